//! RTP/RTCP port pairs from a configured range: RTP on an even port, RTCP on the next one
//! (RFC 3550 section 11), handed out round-robin so a port just freed is not reused at once
//! (late packets of the old call would land in the new one).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::MediaError;

/// Hands out RTP/RTCP socket pairs from a port range on one local address.
#[derive(Debug)]
pub struct PortAllocator {
    ip: IpAddr,
    first: u16,
    pairs: u32,
    cursor: AtomicU32,
}

impl PortAllocator {
    /// A range on `ip` (the address that goes into SDP). Port 0 in the range start means "any
    /// port the OS picks", for tests and the lab.
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Result<Self, MediaError> {
        let (start, end) = (*range.start(), *range.end());
        if start == 0 {
            return Ok(PortAllocator {
                ip,
                first: 0,
                pairs: 0,
                cursor: AtomicU32::new(0),
            });
        }
        let first = start + (start % 2);
        if first >= end {
            return Err(MediaError::BadPortRange(range));
        }
        let pairs = (end as u32 - first as u32).div_ceil(2);
        Ok(PortAllocator {
            ip,
            first,
            pairs,
            cursor: AtomicU32::new(0),
        })
    }

    /// The local address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Binds the next free pair: (RTP socket, RTCP socket).
    pub fn bind_pair(&self) -> Result<(UdpSocket, UdpSocket), MediaError> {
        if self.pairs == 0 {
            return self.bind_any_pair();
        }
        for _ in 0..self.pairs {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % self.pairs;
            let port = self.first + (i * 2) as u16;
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(self.ip, port)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(self.ip, port + 1)) else {
                continue;
            };
            return Ok((rtp, rtcp));
        }
        Err(MediaError::NoFreePorts {
            ip: self.ip,
            range: self.first..=self.first + (self.pairs * 2 - 1) as u16,
        })
    }

    /// Without a range: an even port from the OS with its odd neighbour free.
    fn bind_any_pair(&self) -> Result<(UdpSocket, UdpSocket), MediaError> {
        for _ in 0..64 {
            let rtp = UdpSocket::bind(SocketAddr::new(self.ip, 0))?;
            let port = rtp.local_addr()?.port();
            if port % 2 != 0 || port == u16::MAX {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(self.ip, port + 1)) {
                return Ok((rtp, rtcp));
            }
        }
        Err(MediaError::NoFreePorts {
            ip: self.ip,
            range: 0..=0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_odd_and_the_range_runs_out() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        // Find a free block of 4 ports first.
        let base = loop {
            let probe = UdpSocket::bind((ip, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let base = probe - probe % 2;
            if base > 1024 && base < 65000 {
                break base;
            }
        };
        let alloc = PortAllocator::new(ip, base - 1..=base + 3).unwrap();
        let mut held = vec![];
        for _ in 0..2 {
            match alloc.bind_pair() {
                Ok((a, b)) => {
                    let pa = a.local_addr().unwrap().port();
                    assert_eq!(pa % 2, 0);
                    assert_eq!(b.local_addr().unwrap().port(), pa + 1);
                    held.push((a, b));
                }
                // Another test may hold one of these ports; that is the error we expect later.
                Err(MediaError::NoFreePorts { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(matches!(
            alloc.bind_pair(),
            Err(MediaError::NoFreePorts { .. })
        ));
        drop(held);
        assert!(matches!(
            PortAllocator::new(ip, 5001..=5001),
            Err(MediaError::BadPortRange(_))
        ));
        let any = PortAllocator::new(ip, 0..=0).unwrap();
        let (a, b) = any.bind_pair().unwrap();
        assert_eq!(
            a.local_addr().unwrap().port() + 1,
            b.local_addr().unwrap().port()
        );
    }
}
