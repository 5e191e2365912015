//! Arbitrary text as a peer's SDP: parsing with `rtc::sdp`, choosing codec and address, and
//! building our answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::sdp::{self, Codec, LocalMedia, Origin, Sdp};

fuzz_target!(|data: &[u8]| {
    let sdp = Sdp::new(String::from_utf8_lossy(data).into_owned());
    let _ = sdp.remote_media(&[Codec::Pcmu, Codec::Pcma]);
    let local = LocalMedia::new("127.0.0.1:40000".parse().unwrap());
    if let Ok((answer, _)) = sdp::answer(&local, &sdp, &Origin { id: 1, version: 1 }) {
        // Our answer must always be usable by us.
        assert!(answer.remote_media(&[Codec::Pcmu, Codec::Pcma]).is_ok());
    }
});
