//! The `#[cache(MEMORY)]` attribute of
//! joblib for Rust (the crate `joblib`); use it through `joblib` or
//! `joblib-memory`, which re-export it and document it with examples.

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericParam, Ident, ItemFn, Pat, Path, ReturnType, Token, parenthesized,
    parse_macro_input,
};

/// The attribute's arguments: `MEMORY, ignore(a, b), depends_on(f, m::g)`.
struct Args {
    memory: Expr,
    ignore: Vec<Ident>,
    depends_on: Vec<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Args> {
        let memory: Expr = input.parse()?;
        let mut args = Args {
            memory,
            ignore: Vec::new(),
            depends_on: Vec::new(),
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            let content;
            parenthesized!(content in input);
            if key == "ignore" {
                args.ignore
                    .extend(Punctuated::<Ident, Token![,]>::parse_terminated(&content)?);
            } else if key == "depends_on" {
                args.depends_on
                    .extend(Punctuated::<Path, Token![,]>::parse_terminated(&content)?);
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    "expected `ignore(arg, ..)` or `depends_on(function, ..)`",
                ));
            }
        }
        Ok(args)
    }
}

/// Feeds a canonical rendering of `tokens` to `out`: each token's kind and
/// text, independent of whitespace, comments and of how the compiler
/// prints token streams.
fn canonical(tokens: TokenStream2, out: &mut Vec<u8>) {
    for tt in tokens {
        match tt {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => (b'(', b')'),
                    Delimiter::Brace => (b'{', b'}'),
                    Delimiter::Bracket => (b'[', b']'),
                    Delimiter::None => (b'<', b'>'),
                };
                out.push(open);
                canonical(g.stream(), out);
                out.push(close);
            }
            TokenTree::Ident(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(0);
            }
            TokenTree::Punct(p) => {
                out.push(b'p');
                let mut buf = [0u8; 4];
                out.extend_from_slice(p.as_char().encode_utf8(&mut buf).as_bytes());
                out.push(u8::from(p.spacing() == proc_macro2::Spacing::Joint));
            }
            TokenTree::Literal(l) => {
                out.push(b'l');
                out.extend_from_slice(l.to_string().as_bytes());
                out.push(0);
            }
        }
    }
}

/// The fingerprint of a function: its tokens without doc comments, and the
/// arguments it leaves out of the key.
fn fingerprint(item: &ItemFn, ignore: &[Ident]) -> u128 {
    let mut item = item.clone();
    item.attrs.retain(|a| !a.path().is_ident("doc"));
    let mut bytes = b"joblib-fn-1\0".to_vec();
    canonical(quote!(#item), &mut bytes);
    for i in ignore {
        bytes.extend_from_slice(b"ignore\0");
        bytes.extend_from_slice(i.to_string().as_bytes());
        bytes.push(0);
    }
    twox_hash::XxHash3_128::oneshot(&bytes)
}

/// The path of the runtime crate as the calling crate names it.
fn runtime_crate() -> TokenStream2 {
    use proc_macro_crate::{FoundCrate, crate_name};
    match crate_name("joblib-memory") {
        Ok(FoundCrate::Name(name)) => {
            let name = Ident::new(&name, Span::call_site());
            return quote!(::#name);
        }
        // `lib.rs` of joblib-memory declares `extern crate self as
        // joblib_memory`, and its tests and examples see it by that name.
        Ok(FoundCrate::Itself) => return quote!(::joblib_memory),
        Err(_) => {}
    }
    match crate_name("joblib") {
        Ok(FoundCrate::Name(name)) => {
            let name = Ident::new(&name, Span::call_site());
            quote!(::#name::memory)
        }
        _ => quote!(::joblib_memory),
    }
}

/// The name of the item holding the fingerprint of function `name`.
fn fingerprint_fn(name: &Ident) -> Ident {
    format_ident!("__joblib_fingerprint_{}", name)
}

/// Caches a function's results in a `joblib_memory::Memory`.
///
/// `#[cache(MEMORY)]`, where `MEMORY` is an expression that derefs to a
/// `Memory` (a `static MEMORY: LazyLock<Memory>` for example), evaluated on
/// the first call. The function keeps its signature. Its arguments must
/// implement `Serialize` (they are hashed by reference) and its result
/// `Serialize + DeserializeOwned`.
///
/// The cache identity is the module path and name of the function plus a
/// fingerprint of its own tokens (doc comments excluded) taken at compile
/// time: editing the function clears its stored results.
///
/// Options, after the memory:
/// - `ignore(a, b)`: these arguments are left out of the key (a verbosity
///   flag, a thread count). They need not implement `Serialize`.
/// - `depends_on(helper, module::other)`: functions that also carry
///   `#[cache]` (or `#[cache]`'s fingerprint item); their fingerprints are
///   folded in, so editing a helper invalidates this function too.
///
/// Each cached function `f` also gets a `const fn __joblib_fingerprint_f()
/// -> u128` beside it, with its visibility, used by `depends_on`.
///
/// Methods taking `self`, `async fn`s and const generics are not supported.
#[proc_macro_attribute]
pub fn cache(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as Args);
    let func = parse_macro_input!(item as ItemFn);
    match expand(args, func) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(args: Args, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(
            a.span(),
            "#[cache] does not support async fn",
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new(
            v.span(),
            "#[cache] does not support variadic functions",
        ));
    }
    let mut type_params = Vec::new();
    for p in &sig.generics.params {
        match p {
            GenericParam::Type(t) => type_params.push(t.ident.clone()),
            GenericParam::Lifetime(_) => {}
            GenericParam::Const(c) => {
                return Err(syn::Error::new(
                    c.span(),
                    "#[cache] does not support const generics",
                ));
            }
        }
    }

    let own = fingerprint(&func, &args.ignore);
    let krate = runtime_crate();
    let name = &sig.ident;
    let name_str = name.to_string();
    let fp_fn = fingerprint_fn(name);
    let vis = &func.vis;
    let memory = &args.memory;

    // The outer function keeps the signature, with plain names for the
    // parameters; the original function is nested inside, unchanged.
    let mut outer_sig = sig.clone();
    let mut call_args = Vec::new();
    let mut key_args = Vec::new();
    let mut seen = Vec::new();
    for (i, input) in outer_sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(pt) = input else {
            return Err(syn::Error::new(
                input.span(),
                "#[cache] does not support methods taking `self`; cache a free function",
            ));
        };
        let plain = match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => Some(pi.ident.clone()),
            _ => None,
        };
        let ident = plain
            .clone()
            .unwrap_or_else(|| format_ident!("__joblib_arg{}", i));
        *pt.pat = syn::parse_quote!(#ident);
        call_args.push(ident.clone());
        let ignored = plain.as_ref().is_some_and(|p| args.ignore.contains(p));
        if let Some(p) = plain {
            seen.push(p);
        }
        if !ignored {
            key_args.push(ident);
        }
    }
    for i in &args.ignore {
        if !seen.contains(i) {
            return Err(syn::Error::new(
                i.span(),
                format!("`{i}` is not an argument of `{name_str}` (bound to a plain name)"),
            ));
        }
    }

    let ret = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };
    let inner_ident = format_ident!("__joblib_compute_{}", name);
    let mut inner = func.clone();
    inner.sig.ident = inner_ident.clone();
    inner.vis = syn::Visibility::Inherited;
    inner.attrs.retain(|a| !a.path().is_ident("doc"));
    let attrs = &func.attrs;
    let turbofish = if type_params.is_empty() {
        quote!()
    } else {
        quote!(::<#(#type_params),*>)
    };
    // Type parameters are part of the key: `f::<f32>` and `f::<f64>` have
    // separate entries. A function without them keys on its arguments alone,
    // which also keeps the verbose summary of a call to just the arguments.
    let type_key = if type_params.is_empty() {
        quote!()
    } else {
        quote!((#(::core::any::type_name::<#type_params>(),)*),)
    };
    let deps = args.depends_on.iter().map(|p| {
        let mut p = p.clone();
        if let Some(last) = p.segments.last_mut() {
            last.ident = fingerprint_fn(&last.ident);
        }
        quote!(let fp = #krate::__private::fold_fingerprint(fp, #p());)
    });

    Ok(quote! {
        #(#attrs)*
        #vis #outer_sig {
            #[allow(clippy::too_many_arguments)]
            #inner
            static __JOBLIB_CACHED: ::std::sync::OnceLock<#krate::__private::CachedFn> =
                ::std::sync::OnceLock::new();
            let __joblib_cached = __JOBLIB_CACHED.get_or_init(|| {
                #krate::__private::CachedFn::new(
                    &#memory,
                    ::core::concat!(::core::module_path!(), "::", #name_str),
                    #fp_fn(),
                )
            });
            let __joblib_key = (#type_key #(&#key_args,)*);
            match __joblib_cached.lookup::<_, #ret>(&__joblib_key) {
                #krate::__private::Lookup::Hit(__joblib_value) => __joblib_value,
                #krate::__private::Lookup::Miss(__joblib_pending) => {
                    __joblib_pending.run(move || #inner_ident #turbofish (#(#call_args),*))
                }
            }
        }

        /// The fingerprint of the cached function of the same name.
        #[doc(hidden)]
        #[allow(dead_code)]
        #vis const fn #fp_fn() -> u128 {
            let fp: u128 = #own;
            #(#deps)*
            fp
        }
    })
}
