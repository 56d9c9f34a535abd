// Types shared by the integration tests.
#![allow(dead_code)]

use serde::Serialize;

#[derive(Serialize)]
pub(crate) enum Shape {
    Empty,
    Circle(f64),
    Segment(f64, f64),
    Rect { w: f64, h: f64 },
}

#[derive(Serialize)]
pub(crate) struct Point {
    pub(crate) x: f64,
    pub(crate) y: f64,
}

#[derive(Serialize)]
pub(crate) struct Marker;

#[derive(Serialize)]
pub(crate) struct Meters(pub(crate) f64);

#[derive(Serialize)]
pub(crate) struct Pair(pub(crate) u8, pub(crate) u8);
