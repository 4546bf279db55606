//! The few libuv calls the native I/O driver needs, on the loop Node runs
//! (`napi_get_uv_event_loop`): a poll handle watching the UDP socket and a
//! timer for the core's earliest deadline.
//!
//! libuv is part of the host process (Node and Electron export its
//! symbols), not of this addon: the functions are looked up in the process
//! at run time (`dlsym` / `GetProcAddress`), the same way on every platform,
//! so the addon links against nothing new. Handle memory is sized by
//! `uv_handle_size`, so no libuv struct layout is assumed here either.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// `uv_loop_t`, `uv_handle_t`: opaque.
pub type Loop = c_void;
pub type Handle = c_void;

/// `uv_os_sock_t`.
#[cfg(unix)]
pub type OsSocket = c_int;
#[cfg(windows)]
pub type OsSocket = usize;

pub type PollCb = unsafe extern "C" fn(handle: *mut Handle, status: c_int, events: c_int);
pub type TimerCb = unsafe extern "C" fn(handle: *mut Handle);
pub type CloseCb = unsafe extern "C" fn(handle: *mut Handle);

/// `uv_handle_type` values (stable across libuv 1.x).
pub const UV_POLL: c_int = 8;
pub const UV_TIMER: c_int = 13;
/// `uv_poll_event` bits.
pub const UV_READABLE: c_int = 1;
pub const UV_WRITABLE: c_int = 2;

/// The libuv functions, resolved once.
pub struct Uv {
    pub handle_size: unsafe extern "C" fn(c_int) -> usize,
    pub poll_init_socket: unsafe extern "C" fn(*mut Loop, *mut Handle, OsSocket) -> c_int,
    pub poll_start: unsafe extern "C" fn(*mut Handle, c_int, PollCb) -> c_int,
    pub timer_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
    pub timer_start: unsafe extern "C" fn(*mut Handle, TimerCb, u64, u64) -> c_int,
    pub close: unsafe extern "C" fn(*mut Handle, Option<CloseCb>),
    pub handle_get_data: unsafe extern "C" fn(*const Handle) -> *mut c_void,
    pub handle_set_data: unsafe extern "C" fn(*mut Handle, *mut c_void),
    pub strerror: unsafe extern "C" fn(c_int) -> *const c_char,
}

#[cfg(unix)]
fn lookup(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT searches the symbols already loaded
    // into the process; the name is NUL-terminated.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

#[cfg(windows)]
fn lookup(name: &CStr) -> *mut c_void {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    // SAFETY: the process's own module handle; the name is NUL-terminated.
    unsafe {
        let module = GetModuleHandleW(std::ptr::null());
        match GetProcAddress(module, name.as_ptr().cast()) {
            Some(f) => f as *mut c_void,
            None => std::ptr::null_mut(),
        }
    }
}

/// The process's function `name`, as the function pointer type `T`.
fn sym<T: Copy>(name: &'static CStr) -> Result<T, &'static str> {
    let p = lookup(name);
    if p.is_null() {
        return Err("a libuv function was not found in the host process");
    }
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: `T` is the C signature of libuv's function of that name, a
    // function pointer of the same size as the symbol's address.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
}

fn load() -> Result<Uv, &'static str> {
    Ok(Uv {
        handle_size: sym(c"uv_handle_size")?,
        poll_init_socket: sym(c"uv_poll_init_socket")?,
        poll_start: sym(c"uv_poll_start")?,
        timer_init: sym(c"uv_timer_init")?,
        timer_start: sym(c"uv_timer_start")?,
        close: sym(c"uv_close")?,
        handle_get_data: sym(c"uv_handle_get_data")?,
        handle_set_data: sym(c"uv_handle_set_data")?,
        strerror: sym(c"uv_strerror")?,
    })
}

/// libuv's functions, or why they cannot be used in this process.
pub fn uv() -> Result<&'static Uv, &'static str> {
    static UV: OnceLock<Result<Uv, &'static str>> = OnceLock::new();
    UV.get_or_init(load).as_ref().map_err(|e| *e)
}

impl Uv {
    /// A zeroed allocation for a handle of `kind`, freed by [`Uv::free`].
    pub fn alloc(&self, kind: c_int) -> *mut Handle {
        // SAFETY: plain libuv call.
        let size = unsafe { (self.handle_size)(kind) }.max(8);
        Box::into_raw(vec![0u64; size.div_ceil(8)].into_boxed_slice()).cast::<Handle>()
    }

    /// The text of a libuv error code.
    pub fn error(&self, code: c_int) -> String {
        // SAFETY: uv_strerror returns a static string for any code.
        unsafe { CStr::from_ptr((self.strerror)(code)) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Frees a handle from [`Uv::alloc`] of `kind`; the close callback of both kinds.
pub unsafe extern "C" fn free_poll(h: *mut Handle) {
    unsafe { free(h, UV_POLL) }
}

pub unsafe extern "C" fn free_timer(h: *mut Handle) {
    unsafe { free(h, UV_TIMER) }
}

unsafe fn free(h: *mut Handle, kind: c_int) {
    let Ok(uv) = uv() else { return };
    let size = unsafe { (uv.handle_size)(kind) }.max(8);
    // SAFETY: `h` came from `alloc(kind)`, which boxed a slice of this many words.
    drop(unsafe {
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            h.cast::<u64>(),
            size.div_ceil(8),
        ))
    });
}
