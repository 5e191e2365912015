//! The glue between a SIP dialog and its RTP leg: the peer's SDP into the leg's remote side,
//! the leg's address into our SDP.

use crate::LabError;
use media::{Leg, LegEvents, LegOptions, MediaRuntime, PortAllocator};
use sip::sdp::{Codec, LocalMedia, Sdp};

/// The media leg's view of the peer's SDP (where to send, which codec and payload type, DTMF).
pub fn remote_media(sdp: &Sdp) -> Result<media::RemoteMedia, LabError> {
    let remote = sdp.remote_media(&[Codec::Pcmu, Codec::Pcma])?;
    let codec = match remote.codec {
        Codec::Pcmu => media::Codec::Pcmu,
        Codec::Pcma => media::Codec::Pcma,
    };
    let mut media = media::RemoteMedia::new(remote.addr, codec);
    media.codecs = vec![(remote.payload_type, codec)];
    media.dtmf = remote.telephone_event;
    Ok(media)
}

/// Points `leg` at the peer of `sdp`; an unusable or on-hold SDP leaves the leg as it was.
pub(crate) fn aim(leg: &Leg, sdp: &Sdp) -> bool {
    match remote_media(sdp) {
        Ok(remote) if !remote.rtp.ip().is_unspecified() && remote.rtp.port() != 0 => {
            leg.set_remote(&remote).is_ok()
        }
        Ok(_) => false,
        Err(err) => {
            tracing::debug!(error = %err, "unusable SDP");
            false
        }
    }
}

/// Opens a leg on `media` that sends silence whenever it has nothing to say, as a real phone
/// does.
pub(crate) fn open_leg(
    media: &MediaRuntime,
    ports: &PortAllocator,
    label: String,
) -> Result<(Leg, LegEvents), LabError> {
    Ok(media.open_leg(
        ports,
        LegOptions {
            comfort_silence: true,
            cname: "lab".into(),
            label,
            ..LegOptions::default()
        },
    )?)
}

/// Our SDP side for a leg.
pub(crate) fn local_media(leg: &Leg) -> LocalMedia {
    LocalMedia::new(leg.local_rtp_addr())
}
