//! The libuv callbacks: socket readable (or writable again), timer due;
//! and the one call into JavaScript per batch.

use std::ffi::c_int;
use std::ptr;
use std::time::Instant;

use napi::sys;

use crate::uv::{self, Handle, UV_READABLE};
use crate::NativeEndpoint;

/// The endpoint behind a handle's data pointer (null once closed).
unsafe fn endpoint_of<'a>(h: *mut Handle) -> Option<&'a mut NativeEndpoint> {
    let uv = uv::uv().ok()?;
    let p = unsafe { (uv.handle_get_data)(h) }.cast::<NativeEndpoint>();
    // SAFETY: set in `open` to the live endpoint, cleared in `close`; see the module docs.
    unsafe { p.as_mut() }
}

pub(super) unsafe extern "C" fn on_poll(h: *mut Handle, _status: c_int, events: c_int) {
    if events & UV_READABLE != 0 {
        let Some(ep) = (unsafe { endpoint_of(h) }) else {
            return;
        };
        ep.io_read();
    }
    unsafe { respond(h) };
}

pub(super) unsafe extern "C" fn on_timer(h: *mut Handle) {
    let Some(ep) = (unsafe { endpoint_of(h) }) else {
        return;
    };
    if let Some(io) = ep.io.as_mut() {
        io.timer_at = None;
    }
    ep.ep.on_timeout_at(Instant::now());
    unsafe { respond(h) };
}

/// After input: JavaScript first when it has work (it answers, and its
/// flush at the end carries the ACKs with the answer, one packet where two
/// would go otherwise), then a flush of whatever is left (ACKs when
/// JavaScript had nothing, the rest of a window), then JavaScript again if
/// that flush decided something. The endpoint is looked up again after
/// every call into JavaScript: it may have closed the driver.
unsafe fn respond(h: *mut Handle) {
    if let Some(ep) = unsafe { endpoint_of(h) } {
        let work = ep.io_work();
        if work != 0 {
            notify(ep, work);
        }
    }
    if let Some(ep) = unsafe { endpoint_of(h) } {
        ep.drive_flush();
        let work = ep.io_work();
        if work != 0 {
            notify(ep, work);
        }
    }
}

/// Calls JavaScript's callback with the `WORK_*` bits; the endpoint borrow ends before the call.
fn notify(ep: &mut NativeEndpoint, work: u32) {
    let Some(io) = ep.io.as_mut() else { return };
    io.counters.js_calls += 1;
    let (env, callback, ctx) = (io.env, io.callback, io.async_ctx);
    // SAFETY: on the loop's thread, outside any JavaScript frame; napi_make_callback
    // runs the microtask and nextTick queues afterwards, as for any I/O callback.
    unsafe {
        let mut scope = ptr::null_mut();
        sys::napi_open_handle_scope(env, &mut scope);
        let mut f = ptr::null_mut();
        let mut recv = ptr::null_mut();
        sys::napi_get_reference_value(env, callback, &mut f);
        sys::napi_get_global(env, &mut recv);
        let mut arg = ptr::null_mut();
        sys::napi_create_uint32(env, work, &mut arg);
        if !f.is_null() && !arg.is_null() {
            let mut result = ptr::null_mut();
            let status = sys::napi_make_callback(env, ctx, recv, f, 1, &arg, &mut result);
            if status == sys::Status::napi_pending_exception {
                let mut err = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut err);
                sys::napi_fatal_exception(env, err);
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
}
