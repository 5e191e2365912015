//! Reads a socket's waiting datagrams with one `recvmmsg`, for the receive loop's visits to
//! detection legs: every socket in turn, without waiting to be told it is readable.
//!
//! A leg that only feeds detection, recording and DTMF is read every few tens of milliseconds,
//! and by then its socket holds several datagrams. Asking the kernel for all of them in one
//! call costs one system call a visit and nothing per datagram beyond the receive itself,
//! where a multishot request costs a poll and task-work item a visit and a completion, a
//! provided buffer and its return per datagram; and the datagrams land in the same few
//! buffers every time, warm in cache, instead of cycling through a ring of a thousand.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::sys::{RECEIVE_BUFFER, source};

/// Datagrams taken per call: 8 are waiting after 160 ms of 20 ms packets.
pub(crate) const BATCH: usize = 16;
/// Bytes of control messages per datagram: the arrival stamp (`SCM_TIMESTAMPNS`, 32 bytes).
const CONTROL_LEN: usize = 32;

/// Control message space, aligned as a `cmsghdr` must be.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; CONTROL_LEN]);

/// The buffers and headers of one `recvmmsg` call, reused for every socket a loop visits.
pub(crate) struct BatchReader {
    payloads: Box<[[u8; RECEIVE_BUFFER]; BATCH]>,
    names: Box<[libc::sockaddr_in6; BATCH]>,
    controls: Box<[Control; BATCH]>,
    iovecs: Box<[libc::iovec; BATCH]>,
    headers: Box<[libc::mmsghdr; BATCH]>,
    /// Datagrams the last call took.
    taken: usize,
}

// SAFETY: the raw pointers in the headers point into boxes owned by the reader alone, which
// do not move when the reader does.
unsafe impl Send for BatchReader {}

/// One datagram a [`BatchReader`] took.
pub(crate) struct Datagram<'a> {
    /// Where it came from (`None` if the kernel wrote no address of a known family).
    pub from: Option<SocketAddr>,
    /// Its control messages (the arrival stamp).
    pub control: &'a [u8],
    /// Its payload; one byte longer than the longest accepted if it was cut short.
    pub payload: &'a [u8],
}

impl BatchReader {
    /// A reader with its buffers.
    pub(crate) fn new() -> BatchReader {
        // SAFETY: all-zero socket addresses, iovecs and message headers are valid (null
        // pointers, zero lengths).
        let mut reader = BatchReader {
            payloads: Box::new([[0; RECEIVE_BUFFER]; BATCH]),
            names: Box::new(unsafe { std::mem::zeroed() }),
            controls: Box::new([Control([0; CONTROL_LEN]); BATCH]),
            iovecs: Box::new(unsafe { std::mem::zeroed() }),
            headers: Box::new(unsafe { std::mem::zeroed() }),
            taken: 0,
        };
        for i in 0..BATCH {
            reader.iovecs[i] = libc::iovec {
                iov_base: reader.payloads[i].as_mut_ptr().cast(),
                iov_len: RECEIVE_BUFFER,
            };
            let header = &mut reader.headers[i].msg_hdr;
            header.msg_name = (&raw mut reader.names[i]).cast();
            header.msg_iov = &raw mut reader.iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = reader.controls[i].0.as_mut_ptr().cast();
        }
        reader
    }

    /// Takes up to [`BATCH`] datagrams waiting on `fd` without blocking; returns how many
    /// (0 if none were waiting). An error is the socket's (a pending ICMP error, say), reported
    /// once by the kernel.
    pub(crate) fn read(&mut self, fd: RawFd) -> std::io::Result<usize> {
        self.taken = 0;
        for header in self.headers.iter_mut() {
            // The kernel writes back the lengths it used.
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as _;
            header.msg_hdr.msg_controllen = CONTROL_LEN as _;
            header.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at buffers of the lengths it gives, owned by `self`,
        // which outlive the call; no timeout.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        self.taken = n as usize;
        Ok(self.taken)
    }

    /// The `i`th datagram the last [`BatchReader::read`] took.
    pub(crate) fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.taken {
            return None;
        }
        let header = &self.headers[i];
        let name_len =
            (header.msg_hdr.msg_namelen as usize).min(std::mem::size_of::<libc::sockaddr_in6>());
        // SAFETY: a sockaddr_in6 is plain bytes; the kernel wrote `name_len` of them.
        let name = unsafe {
            std::slice::from_raw_parts((&raw const self.names[i]).cast::<u8>(), name_len)
        };
        // `msg_controllen` is a `usize` with glibc and a `u32` with musl.
        #[allow(clippy::unnecessary_cast)]
        let control_len = (header.msg_hdr.msg_controllen as usize).min(CONTROL_LEN);
        let len = if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            RECEIVE_BUFFER
        } else {
            (header.msg_len as usize).min(RECEIVE_BUFFER)
        };
        Some(Datagram {
            from: source(name),
            control: &self.controls[i].0[..control_len],
            payload: &self.payloads[i][..len],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_read_takes_every_waiting_datagram_with_its_source_and_then_none() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut reader = BatchReader::new();
        assert_eq!(reader.read(rx.as_raw_fd()).unwrap(), 0);
        for i in 0..BATCH + 3 {
            tx.send_to(&[i as u8; 172], rx.local_addr().unwrap())
                .unwrap();
        }
        tx.send_to(&[7; RECEIVE_BUFFER + 100], rx.local_addr().unwrap())
            .unwrap();
        assert_eq!(reader.read(rx.as_raw_fd()).unwrap(), BATCH);
        for i in 0..BATCH {
            let d = reader.get(i).unwrap();
            assert_eq!(d.from, Some(tx.local_addr().unwrap()));
            assert_eq!(d.payload, &[i as u8; 172][..]);
        }
        assert!(reader.get(BATCH).is_none());
        assert_eq!(reader.read(rx.as_raw_fd()).unwrap(), 4);
        assert_eq!(
            reader.get(2).unwrap().payload,
            &[(BATCH + 2) as u8; 172][..]
        );
        // Cut short, and seen to be: one byte more than the longest accepted.
        assert_eq!(reader.get(3).unwrap().payload.len(), RECEIVE_BUFFER);
        assert_eq!(reader.read(rx.as_raw_fd()).unwrap(), 0);
    }
}
