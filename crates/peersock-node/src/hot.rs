//! The per-packet entry points as plain Node-API callbacks.
//!
//! napi-rs wraps every `#[napi]` method call in a type-tag check and a
//! borrow-tracking scope (a global mutex and a hash map). That is right for
//! the API surface, but it cost more than the QUIC work itself on the paths
//! taken for every datagram and stream read/write (measured with callgrind:
//! ~4,000 instructions per call). These five functions skip it: JavaScript
//! passes a handle from `NativeEndpoint.hotHandle()` and typed arrays, and
//! the callbacks read them with raw Node-API calls.
//!
//! Soundness: the handle table is per thread (a JS environment never moves
//! between threads), a handle is cleared when its endpoint is dropped, and
//! none of these callbacks calls back into JavaScript, so no other borrow
//! of the endpoint can be live while one runs (JavaScript is single-threaded
//! and blocked in the call).

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CString};
use std::net::{IpAddr, SocketAddr};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::NativeEndpoint;

thread_local! {
    static ENDPOINTS: RefCell<Vec<*mut NativeEndpoint>> = const { RefCell::new(Vec::new()) };
}

/// Adds an endpoint to this thread's table (or finds it); returns its handle.
pub(crate) fn register(ep: *mut NativeEndpoint) -> u32 {
    ENDPOINTS.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(i) = t.iter().position(|&p| p == ep) {
            return i as u32;
        }
        if let Some(i) = t.iter().position(|p| p.is_null()) {
            t[i] = ep;
            return i as u32;
        }
        t.push(ep);
        (t.len() - 1) as u32
    })
}

/// Clears an endpoint's handle (it is being dropped).
pub(crate) fn forget(ep: *mut NativeEndpoint) {
    // `try_with`: during thread teardown the table may already be gone.
    let _ = ENDPOINTS.try_with(|t| {
        for p in t.borrow_mut().iter_mut() {
            if *p == ep {
                *p = ptr::null_mut();
            }
        }
    });
}

type Res<T> = std::result::Result<T, Thrown>;

/// A failure to report to JavaScript as a thrown Error with `code`.
struct Thrown {
    code: &'static str,
    message: String,
}

impl From<peersock_core::Error> for Thrown {
    fn from(e: peersock_core::Error) -> Thrown {
        Thrown {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

fn invalid(message: &str) -> Thrown {
    Thrown {
        code: peersock_core::Error::InvalidArgument(String::new()).code(),
        message: message.into(),
    }
}

type Env = sys::napi_env;
type Value = sys::napi_value;

/// Runs `f` with the call's arguments and turns its outcome into a JS value
/// (a number) or a thrown error.
unsafe fn call<const N: usize>(
    env: Env,
    info: sys::napi_callback_info,
    f: impl FnOnce(Env, &[Value; N]) -> Res<f64>,
) -> Value {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    let outcome = if status != sys::Status::napi_ok || argc < N {
        Err(invalid("missing arguments"))
    } else {
        f(env, &argv)
    };
    match outcome {
        Ok(v) => {
            let mut out = ptr::null_mut();
            unsafe { sys::napi_create_double(env, v, &mut out) };
            out
        }
        Err(t) => {
            let code = CString::new(t.code).unwrap_or_default();
            let msg = CString::new(t.message.replace('\0', " ")).unwrap_or_default();
            unsafe { sys::napi_throw_error(env, code.as_ptr(), msg.as_ptr()) };
            ptr::null_mut()
        }
    }
}

/// The endpoint behind a handle argument.
unsafe fn endpoint<'a>(env: Env, v: Value) -> Res<&'a mut NativeEndpoint> {
    let h = unsafe { number(env, v)? };
    let p = ENDPOINTS.with(|t| {
        t.borrow()
            .get(h as usize)
            .copied()
            .unwrap_or(ptr::null_mut())
    });
    if p.is_null() || h.fract() != 0.0 {
        return Err(invalid("not a live endpoint handle"));
    }
    // SAFETY: registered by `hotHandle` from a live `&mut self`, cleared on drop;
    // exclusive for the call (see the module comment).
    Ok(unsafe { &mut *p })
}

unsafe fn number(env: Env, v: Value) -> Res<f64> {
    let mut x = 0.0;
    if unsafe { sys::napi_get_value_double(env, v, &mut x) } != sys::Status::napi_ok {
        return Err(invalid("expected a number"));
    }
    Ok(x)
}

unsafe fn boolean(env: Env, v: Value) -> Res<bool> {
    let mut x = false;
    if unsafe { sys::napi_get_value_bool(env, v, &mut x) } != sys::Status::napi_ok {
        return Err(invalid("expected a boolean"));
    }
    Ok(x)
}

/// A typed array's elements, borrowed for the call.
unsafe fn typed<'a, T>(env: Env, v: Value, kind: i32, what: &str) -> Res<&'a mut [T]> {
    let mut ty = -1;
    let mut len = 0usize;
    let mut data: *mut c_void = ptr::null_mut();
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env,
            v,
            &mut ty,
            &mut len,
            &mut data,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok || ty != kind {
        return Err(invalid(what));
    }
    if len == 0 || data.is_null() {
        return Ok(&mut []);
    }
    // SAFETY: Node-API gave the element pointer and count of a live typed
    // array, which JavaScript cannot touch while it is blocked in this call.
    Ok(unsafe { std::slice::from_raw_parts_mut(data.cast::<T>(), len) })
}

unsafe fn bytes<'a>(env: Env, v: Value) -> Res<&'a mut [u8]> {
    unsafe {
        typed::<u8>(
            env,
            v,
            sys::TypedarrayType::uint8_array,
            "expected a Uint8Array",
        )
    }
}

/// An IP literal and a port.
unsafe fn socket_addr(env: Env, address: Value, port: Value) -> Res<SocketAddr> {
    let mut buf = [0u8; 64];
    let mut len = 0usize;
    let status = unsafe {
        sys::napi_get_value_string_utf8(
            env,
            address,
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
            &mut len,
        )
    };
    if status != sys::Status::napi_ok {
        return Err(invalid("address must be a string"));
    }
    let ip: IpAddr = std::str::from_utf8(&buf[..len])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("address must be an IP literal"))?;
    let port = unsafe { number(env, port)? };
    if !(0.0..=65535.0).contains(&port) || port.fract() != 0.0 {
        return Err(invalid("port must be 0..65535"));
    }
    Ok(SocketAddr::new(ip, port as u16))
}

fn stream_id(x: f64) -> Res<u64> {
    if x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 {
        Ok(x as u64)
    } else {
        Err(invalid("stream id must be a non-negative integer"))
    }
}

fn conn_handle(x: f64) -> Res<u32> {
    if x >= 0.0 && x.fract() == 0.0 && x <= u32::MAX as f64 {
        Ok(x as u32)
    } else {
        Err(invalid("connection handle must be a non-negative integer"))
    }
}

/// `recv(handle, data: Uint8Array, address, port)`: see `NativeEndpoint::recv`.
unsafe extern "C" fn recv(env: Env, info: sys::napi_callback_info) -> Value {
    unsafe {
        call::<4>(env, info, |env, a| {
            let ep = endpoint(env, a[0])?;
            let data = bytes(env, a[1])?;
            let from = socket_addr(env, a[2], a[3])?;
            ep.recv(data, from);
            Ok(0.0)
        })
    }
}

/// `recvOn(handle, data: Uint8Array, address, port, local)`: see `NativeEndpoint::recv_on`.
unsafe extern "C" fn recv_on(env: Env, info: sys::napi_callback_info) -> Value {
    unsafe {
        call::<5>(env, info, |env, a| {
            let ep = endpoint(env, a[0])?;
            let data = bytes(env, a[1])?;
            let from = socket_addr(env, a[2], a[3])?;
            let local = number(env, a[4])?;
            if !((0.0..256.0).contains(&local) && local.fract() == 0.0) {
                return Err(invalid("local index must be an integer 0..255"));
            }
            ep.recv_on(data, from, local as u32)?;
            Ok(0.0)
        })
    }
}

/// `flush(handle, out: Uint8Array, meta: Uint32Array)`: see `NativeEndpoint::flush`.
unsafe extern "C" fn flush(env: Env, info: sys::napi_callback_info) -> Value {
    unsafe {
        call::<3>(env, info, |env, a| {
            let ep = endpoint(env, a[0])?;
            let out = bytes(env, a[1])?;
            let meta = typed::<u32>(
                env,
                a[2],
                sys::TypedarrayType::uint32_array,
                "meta must be a Uint32Array",
            )?;
            Ok(ep.flush(out, meta)? as f64)
        })
    }
}

/// `pollEvents(handle, dgramBuf: Uint8Array, out: Float64Array)`: see `NativeEndpoint::poll_events`.
unsafe extern "C" fn poll_events(env: Env, info: sys::napi_callback_info) -> Value {
    unsafe {
        call::<3>(env, info, |env, a| {
            let ep = endpoint(env, a[0])?;
            let dgram = bytes(env, a[1])?;
            let out = typed::<f64>(
                env,
                a[2],
                sys::TypedarrayType::float64_array,
                "out must be a Float64Array",
            )?;
            Ok(ep.poll_events(dgram, out) as f64)
        })
    }
}

/// `streamRecv(handle, conn, stream, buf: Uint8Array)`: see `NativeEndpoint::stream_recv`.
unsafe extern "C" fn stream_recv(env: Env, info: sys::napi_callback_info) -> Value {
    unsafe {
        call::<4>(env, info, |env, a| {
            let ep = endpoint(env, a[0])?;
            let conn = conn_handle(number(env, a[1])?)?;
            let stream = stream_id(number(env, a[2])?)?;
            let buf = bytes(env, a[3])?;
            Ok(ep.stream_recv(conn, stream, buf)?)
        })
    }
}

/// `streamSend(handle, conn, stream, data: Uint8Array, fin)`: see `NativeEndpoint::stream_send`.
unsafe extern "C" fn stream_send(env: Env, info: sys::napi_callback_info) -> Value {
    unsafe {
        call::<5>(env, info, |env, a| {
            let ep = endpoint(env, a[0])?;
            let conn = conn_handle(number(env, a[1])?)?;
            let stream = stream_id(number(env, a[2])?)?;
            let data = bytes(env, a[3])?;
            let fin = boolean(env, a[4])?;
            Ok(ep.stream_send(conn, stream, data, fin)?)
        })
    }
}

/// The hot-path functions: `{ recv, recvOn, flush, pollEvents, streamRecv, streamSend }`,
/// each taking a handle from `NativeEndpoint.hotHandle()` first.
#[napi(
    ts_return_type = "{ recv(h: number, data: Uint8Array, address: string, port: number): number; recvOn(h: number, data: Uint8Array, address: string, port: number, local: number): number; flush(h: number, out: Uint8Array, meta: Uint32Array): number; pollEvents(h: number, dgramBuf: Uint8Array, out: Float64Array): number; streamRecv(h: number, conn: number, stream: number, buf: Uint8Array): number; streamSend(h: number, conn: number, stream: number, data: Uint8Array, fin: boolean): number }"
)]
pub fn hot_api(env: &napi::Env) -> Result<Object<'_>> {
    let mut obj = Object::new(env)?;
    let fns: [(
        &str,
        unsafe extern "C" fn(Env, sys::napi_callback_info) -> Value,
    ); 6] = [
        ("recv", recv),
        ("recvOn", recv_on),
        ("flush", flush),
        ("pollEvents", poll_events),
        ("streamRecv", stream_recv),
        ("streamSend", stream_send),
    ];
    for (name, cb) in fns {
        let mut f = ptr::null_mut();
        let status = unsafe {
            sys::napi_create_function(
                env.raw(),
                name.as_ptr().cast::<c_char>(),
                name.len() as isize,
                Some(cb),
                ptr::null_mut(),
                &mut f,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(Error::from_reason(format!("cannot create {name}")));
        }
        // SAFETY: `f` is a function value just created in this env.
        obj.set_named_property(name, unsafe { Unknown::from_raw_unchecked(env.raw(), f) })?;
    }
    Ok(obj)
}
