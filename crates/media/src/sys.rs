//! Small pieces every part of the receive path shares: datagram sizes, the lock helper,
//! prefetching, sending on a non-blocking socket, and socket addresses as the kernel writes them.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard};

/// The largest datagram read; anything longer is not G.711 and is dropped.
pub(crate) const MAX_DATAGRAM: usize = 1500;
/// The receive loops' buffers: one byte more than [`MAX_DATAGRAM`], to see that one was longer.
pub(crate) const RECEIVE_BUFFER: usize = MAX_DATAGRAM + 1;

/// Locks a mutex, ignoring poisoning: a listener that panicked must not take the call down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Asks the CPU to start loading the cache line of `at` (any address: a prefetch never
/// faults and reads nothing the program sees).
pub(crate) fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: see above; the address need not be valid.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Sends a datagram now, with one syscall on the non-blocking socket. tokio's `try_send_to`
/// would first consult its readiness cache, which reports "not writable" until the reactor has
/// polled a new socket once: the first packet of a fresh leg would be lost.
pub(crate) fn send_now(socket: &impl AsFd, buf: &[u8], to: SocketAddr) -> std::io::Result<usize> {
    socket2::SockRef::from(socket).send_to(buf, &to.into())
}

/// Writes `to` as a `sockaddr_in` or `sockaddr_in6` into `name`; returns its length.
pub(crate) fn write_sockaddr(name: &mut libc::sockaddr_in6, to: SocketAddr) -> libc::socklen_t {
    match to {
        SocketAddr::V4(v4) => {
            // SAFETY: a sockaddr_in fits in a sockaddr_in6 and needs no more alignment.
            let sin =
                unsafe { &mut *(name as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>() };
            *sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            name.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            name.sin6_port = v6.port().to_be();
            name.sin6_flowinfo = v6.flowinfo().to_be();
            name.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            name.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// The sender's address from a `sockaddr_in` or `sockaddr_in6` as the kernel wrote it.
pub(crate) fn source(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(name.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flow = u32::from_be_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}
