//! rust-echo: an AgentHost plugin written in Rust, with no crates, against the C ABI (src/abi.rs mirrors
//! plugin-sdk/c/include/agenthost_plugin.h). Serves /rust-echo: every message comes back unchanged (text as text,
//! binary as binary). On a 1.2 host it also says which host it runs on and counts messages in a metric,
//! agenthost_plugin_rust_echo_messages_total{plugin="rust-echo"}: capabilities are checked, never assumed.
//!
//! Only `agenthost_plugin_entry_v1` is exported (a cdylib exports its `#[no_mangle] pub extern` functions only).

mod abi;

use abi::*;
use core::ffi::{c_char, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// The host's table and the instance context: set once in instance_create (the host creates one instance per
/// loaded copy of the library), read by every callback.
static HOST: AtomicPtr<HostApi> = AtomicPtr::new(ptr::null_mut());
static CONTEXT: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
static MESSAGES: AtomicU64 = AtomicU64::new(0);
static INSTANCE: u8 = 0;

fn host() -> &'static HostApi {
    // SAFETY: set in instance_create before any other callback; the table is valid until instance_drop.
    unsafe { &*HOST.load(Ordering::Acquire) }
}

fn log(message: &str) {
    let host = host();
    unsafe { (host.log)(CONTEXT.load(Ordering::Acquire), 0, LOG_INFO, message.as_ptr(), message.len()) };
}

/// A NUL-terminated literal as a C string pointer (C string literals need Rust 1.77).
macro_rules! cstr {
    ($text:literal) => {
        concat!($text, "\0").as_ptr() as *const c_char
    };
}

/// Writes `message` into the host's error buffer (NUL-terminated, cut to fit).
unsafe fn refuse(error: *mut c_char, capacity: usize, message: &str) -> *mut c_void {
    if !error.is_null() && capacity > 0 {
        let bytes = message.as_bytes();
        let len = bytes.len().min(capacity - 1);
        ptr::copy_nonoverlapping(bytes.as_ptr() as *const c_char, error, len);
        *error.add(len) = 0;
    }
    ptr::null_mut()
}

unsafe extern "C" fn create(api: *const HostApi, ctx: *mut c_void, _config: *const u8, _config_len: usize,
                            error: *mut c_char, error_capacity: usize) -> *mut c_void {
    if let Some(problem) = layout_problem() {
        return refuse(error, error_capacity, &format!("rust-echo was built with a wrong ABI layout: {}", problem));
    }
    HOST.store(api as *mut HostApi, Ordering::Release);
    CONTEXT.store(ctx, Ordering::Release);
    let host = host();
    if host.has(field_offset!(HostApi, host_info)) {
        if let Some(host_info) = host.host_info {
            let mut info = HostInfo { struct_size: core::mem::size_of::<HostInfo>() as u32, abi_major: 0,
                                      abi_minor: 0, host_version: [0; 32] };
            if host_info(&mut info) == AGENTHOST_OK {
                let version: Vec<u8> = info.host_version.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
                log(&format!("rust-echo on AgentHost {} (ABI {}.{})", String::from_utf8_lossy(&version),
                             info.abi_major, info.abi_minor));
            }
        }
    }
    if host.has(field_offset!(HostApi, metric_add)) {
        if let Some(define) = host.metric_define {
            let def = MetricDef { struct_size: core::mem::size_of::<MetricDef>() as u32, kind: METRIC_COUNTER,
                                  name: cstr!("rust_echo_messages_total"), help: cstr!("Messages echoed"),
                                  label_names: ptr::null(), label_count: 0, buckets: ptr::null(), bucket_count: 0 };
            let mut handle = 0u64;
            if define(ctx, &def, &mut handle) == AGENTHOST_OK {
                MESSAGES.store(handle, Ordering::Release);
            }
        }
    }
    &INSTANCE as *const u8 as *mut c_void
}

unsafe extern "C" fn drop_instance(_instance: *mut c_void) {}

unsafe extern "C" fn open(_instance: *mut c_void, _conn: Conn, _info: *const c_void, _data: *mut *mut c_void) -> i32 {
    AGENTHOST_OK
}

unsafe extern "C" fn message(_instance: *mut c_void, _data: *mut c_void, conn: Conn, kind: i32, bytes: *const u8,
                             len: usize) {
    let host = host();
    (host.send)(conn, kind, bytes, len);
    let metric = MESSAGES.load(Ordering::Acquire);
    if metric != 0 {
        if let Some(add) = host.metric_add {
            add(metric, ptr::null(), 0, 1.0);
        }
    }
}

unsafe extern "C" fn event(_instance: *mut c_void, _data: *mut c_void, _conn: Conn, _event: *const c_void) {}

unsafe extern "C" fn close(_instance: *mut c_void, _data: *mut c_void, _conn: Conn, _code: u16, _reason: *const u8,
                           _len: usize) {}

unsafe extern "C" fn drain(_instance: *mut c_void) {
    log("rust-echo draining: a new version serves new connections");
}

static ROUTES: Routes = Routes([cstr!("/rust-echo")]);

static DESCRIPTOR: Descriptor = Descriptor(Plugin {
    struct_size: core::mem::size_of::<Plugin>() as u32,
    abi_major: 1,
    abi_minor: 2,
    name: cstr!("rust-echo"),
    version: cstr!("1.0.0"),
    routes: &ROUTES.0 as *const [*const c_char; 1] as *const *const c_char,
    route_count: 1,
    instance_create: create,
    instance_drop: drop_instance,
    on_open: open,
    on_message: message,
    on_event: event,
    on_writable: None,
    on_error: None,
    on_close: close,
    on_drain: Some(drain),
    on_upgrade: None,
});

/// The entry point the host looks up with dlsym.
#[no_mangle]
pub extern "C" fn agenthost_plugin_entry_v1(_host_abi_minor: u32) -> *const Plugin {
    &DESCRIPTOR.0
}
