//! Counters the API turns into Prometheus metrics. Incremented by the core with relaxed atomics
//! and read at any time from any thread.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Live counters of one endpoint.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A copy of the counters at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Stats {
            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }

        impl StatsSnapshot {
            /// Every counter with its name, for exporting.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($name), self.$name),)*].into_iter()
            }
        }
    };
}

counters! {
    /// Messages received (datagrams and TCP frames), valid or not.
    messages_received,
    /// Messages sent, retransmissions included.
    messages_sent,
    /// Received messages that could not be parsed or lacked mandatory headers.
    parse_errors,
    /// Valid messages dropped: stray responses, ACKs with no dialog, messages over limits.
    dropped,
    /// Requests answered with 400 Bad Request.
    bad_requests,
    /// Retransmissions sent by our timers (A, E, G and 2xx).
    retransmissions,
    /// Retransmissions received and absorbed by a transaction.
    retransmissions_absorbed,
    /// Client transactions that got no final response (timers B and F), and INVITE server
    /// transactions that got no ACK (timer H).
    transaction_timeouts,
    /// Sends the transport could not deliver.
    transport_errors,
    /// Outbound INVITEs sent (first attempts, not authentication retries).
    invites_sent,
    /// Outbound calls answered.
    calls_answered,
    /// Incoming INVITEs that created a call.
    calls_received,
    /// Challenges (401/407) we answered with credentials.
    auth_answered,
    /// Challenges we sent (401) to phones.
    auth_challenges,
    /// Credentials we refused.
    auth_failures,
    /// Successful registrations (including refreshes).
    registrations,
    /// Session refreshes sent (re-INVITE or UPDATE).
    session_refreshes,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
