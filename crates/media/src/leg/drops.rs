//! The kernel's count of datagrams it dropped on a leg's socket because the queue was full.

use std::os::fd::{AsFd, AsRawFd};

/// Datagrams the kernel dropped on `socket` because its queue was full (`SO_MEMINFO`'s drop
/// count); 0 where the kernel does not say.
pub(super) fn kernel_drops(socket: &impl AsFd) -> u64 {
    // Not exported by libc for every target; 55 on every Linux architecture we build for.
    const SO_MEMINFO: libc::c_int = 55;
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which outlives the call, and
    // updates `len` to the number written.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let drops = libc::SK_MEMINFO_DROPS as usize;
    if rc != 0 || (len as usize) < (drops + 1) * std::mem::size_of::<u32>() {
        return 0;
    }
    u64::from(info[drops])
}
