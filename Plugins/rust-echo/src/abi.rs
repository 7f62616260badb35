//! The parts of plugin-sdk/c/include/agenthost_plugin.h this plugin uses, declared by hand (no bindgen: no crates
//! on the build machine). Their layout is checked against the header's when the instance is created
//! (`layout_problem`), so a mismatch refuses the plugin with a clear reason instead of corrupting memory. Written
//! for Rust 1.64 (Debian bookworm has 1.65): no `offset_of!`, no C string literals.
#![allow(dead_code)]

use core::ffi::{c_char, c_void};
use core::mem::size_of;

pub const AGENTHOST_OK: i32 = 0;
pub const AGENTHOST_ERROR: i32 = 4;
pub const MESSAGE_TEXT: i32 = 1;
pub const LOG_INFO: i32 = 2;
pub const METRIC_COUNTER: i32 = 1;

pub type Conn = u64;
type Unused = Option<unsafe extern "C" fn()>;

#[repr(C)]
pub struct HostInfo {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub host_version: [c_char; 32],
}

#[repr(C)]
pub struct MetricDef {
    pub struct_size: u32,
    pub kind: i32,
    pub name: *const c_char,
    pub help: *const c_char,
    pub label_names: *const *const c_char,
    pub label_count: usize,
    pub buckets: *const f64,
    pub bucket_count: usize,
}

#[repr(C)]
pub struct HostApi {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub send: unsafe extern "C" fn(Conn, i32, *const u8, usize) -> i32,
    pub close: unsafe extern "C" fn(Conn, u16, *const u8, usize) -> i32,
    pub log: unsafe extern "C" fn(*mut c_void, Conn, i32, *const u8, usize),
    pub post: Unused,
    pub timer_start: Unused,
    pub timer_cancel: Unused,
    pub retain_conn: Unused,
    pub release_conn: Unused,
    // 1.1: the run log (not used here).
    pub log_functions: [Unused; 9],
    // 1.2: read only when struct_size covers them (see `HostApi::has`).
    pub host_info: Option<unsafe extern "C" fn(*mut HostInfo) -> i32>,
    pub has_function: Unused,
    pub log_level: Unused,
    pub instance_post: Unused,
    pub instance_timer_start: Unused,
    pub instance_timer_cancel: Unused,
    pub pause_reading: Unused,
    pub resume_reading: Unused,
    pub metric_define: Option<unsafe extern "C" fn(*mut c_void, *const MetricDef, *mut u64) -> i32>,
    pub metric_add: Option<unsafe extern "C" fn(u64, *const *const c_char, usize, f64) -> i32>,
}

/// The byte offset of a field, computed on an uninitialised value (what `offset_of!` does in newer Rust).
macro_rules! field_offset {
    ($type:ty, $field:ident) => {{
        let value = core::mem::MaybeUninit::<$type>::uninit();
        let base = value.as_ptr();
        // SAFETY: only the field's address is taken; nothing is read.
        (unsafe { core::ptr::addr_of!((*base).$field) } as usize) - (base as usize)
    }};
}
pub(crate) use field_offset;

impl HostApi {
    /// Whether the host's table reaches the field at `offset` (what AGENTHOST_HOST_HAS does in C).
    pub fn has(&self, offset: usize) -> bool {
        self.struct_size as usize >= offset + size_of::<usize>()
    }
}

pub type InstanceCreate =
    unsafe extern "C" fn(*const HostApi, *mut c_void, *const u8, usize, *mut c_char, usize) -> *mut c_void;

#[repr(C)]
pub struct Plugin {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub routes: *const *const c_char,
    pub route_count: usize,
    pub instance_create: InstanceCreate,
    pub instance_drop: unsafe extern "C" fn(*mut c_void),
    pub on_open: unsafe extern "C" fn(*mut c_void, Conn, *const c_void, *mut *mut c_void) -> i32,
    pub on_message: unsafe extern "C" fn(*mut c_void, *mut c_void, Conn, i32, *const u8, usize),
    pub on_event: unsafe extern "C" fn(*mut c_void, *mut c_void, Conn, *const c_void),
    pub on_writable: Unused,
    pub on_error: Unused,
    pub on_close: unsafe extern "C" fn(*mut c_void, *mut c_void, Conn, u16, *const u8, usize),
    pub on_drain: Option<unsafe extern "C" fn(*mut c_void)>,
    pub on_upgrade: Unused,
}

/// The descriptor is immutable static data the host reads from any thread.
pub struct Descriptor(pub Plugin);
unsafe impl Sync for Descriptor {}

/// A static array of C string pointers (the routes).
pub struct Routes(pub [*const c_char; 1]);
unsafe impl Sync for Routes {}

/// The header's layout on 64-bit Linux (agenthost_plugin_abi_checks.c pins the same offsets on the C side):
/// a description of the first difference, or None.
pub fn layout_problem() -> Option<&'static str> {
    let checks: [(bool, &'static str); 10] = [
        (field_offset!(HostApi, send) == 16, "HostApi.send is not at 16"),
        (field_offset!(HostApi, log_functions) == 80, "HostApi's run log functions are not at 80"),
        (field_offset!(HostApi, host_info) == 152, "HostApi.host_info is not at 152"),
        (field_offset!(HostApi, metric_define) == 216, "HostApi.metric_define is not at 216"),
        (field_offset!(HostApi, metric_add) == 224, "HostApi.metric_add is not at 224"),
        (field_offset!(Plugin, instance_create) == 48, "Plugin.instance_create is not at 48"),
        (field_offset!(Plugin, on_close) == 104, "Plugin.on_close is not at 104"),
        (field_offset!(Plugin, on_drain) == 112, "Plugin.on_drain is not at 112"),
        (size_of::<Plugin>() == 128, "Plugin is not 128 bytes"),
        (size_of::<MetricDef>() == 56, "MetricDef is not 56 bytes"),
    ];
    checks.iter().find(|(ok, _)| !ok).map(|(_, problem)| *problem)
}
