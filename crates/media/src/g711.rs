//! G.711 mu-law (PCMU) and A-law (PCMA), table-driven.
//!
//! Every conversion is one table look-up per sample: decoding indexes a 256-entry table by the
//! code byte, encoding indexes a table by the 14-bit (mu-law) or 13-bit (A-law) linear value, and
//! transcoding PCMU <-> PCMA indexes a 256-entry byte map. The tables are computed at compile time
//! from the reference algorithm (the public-domain Sun `g711.c`), so they match what every other
//! G.711 implementation produces.

/// A G.711 variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Mu-law, static RTP payload type 0, used in North America and Japan.
    Pcmu,
    /// A-law, static RTP payload type 8, used in most other countries.
    Pcma,
}

/// The RTP clock rate of G.711 and of telephone-event at 8 kHz.
pub const CLOCK_RATE: u32 = 8000;

impl Codec {
    /// The static RTP payload type (RFC 3551): 0 for PCMU, 8 for PCMA.
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec of a static payload type, if it is 0 or 8.
    pub const fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`a=rtpmap:0 PCMU/8000`).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The code byte of digital silence (the encoding of sample 0).
    pub const fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// Decodes one code byte to a 16-bit linear sample.
    #[inline]
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ULAW_TO_LINEAR[code as usize],
            Codec::Pcma => ALAW_TO_LINEAR[code as usize],
        }
    }

    /// Encodes one 16-bit linear sample.
    #[inline]
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => LINEAR_TO_ULAW[((sample as i32 >> 2) & 0x3FFF) as usize],
            Codec::Pcma => LINEAR_TO_ALAW[((sample as i32 >> 3) & 0x1FFF) as usize],
        }
    }

    /// Decodes `payload` into `out` (which must be at least as long) and returns the samples
    /// written.
    pub fn decode(self, payload: &[u8], out: &mut [i16]) -> usize {
        let n = payload.len().min(out.len());
        let table = match self {
            Codec::Pcmu => &ULAW_TO_LINEAR,
            Codec::Pcma => &ALAW_TO_LINEAR,
        };
        for (sample, &code) in out[..n].iter_mut().zip(&payload[..n]) {
            *sample = table[code as usize];
        }
        n
    }

    /// Encodes `pcm` into `out` (which must be at least as long) and returns the bytes written.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (code, &sample) in out[..n].iter_mut().zip(&pcm[..n]) {
            *code = self.encode_sample(sample);
        }
        n
    }

    /// Converts one code byte of this codec to the same sound in `to` (the identity when equal).
    #[inline]
    pub fn transcode_byte(self, code: u8, to: Codec) -> u8 {
        match (self, to) {
            (Codec::Pcmu, Codec::Pcma) => ULAW_TO_ALAW[code as usize],
            (Codec::Pcma, Codec::Pcmu) => ALAW_TO_ULAW[code as usize],
            _ => code,
        }
    }

    /// Converts a payload of this codec in place to `to`.
    pub fn transcode_in_place(self, payload: &mut [u8], to: Codec) {
        let table = match (self, to) {
            (Codec::Pcmu, Codec::Pcma) => &ULAW_TO_ALAW,
            (Codec::Pcma, Codec::Pcmu) => &ALAW_TO_ULAW,
            _ => return,
        };
        for code in payload {
            *code = table[*code as usize];
        }
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut seg = 0;
    while seg < 8 {
        if value <= ends[seg] {
            return seg;
        }
        seg += 1;
    }
    8
}

/// Sun `linear2ulaw` on a 14-bit value.
const fn ulaw_from_14bit(value: i32) -> u8 {
    let (mut pcm, mask) = if value < 0 {
        (-value, 0x7F)
    } else {
        (value, 0xFF)
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS >> 2;
    let seg = segment(pcm, &ULAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let code = ((seg as i32) << 4) | ((pcm >> (seg + 1)) & 0xF);
    (code ^ mask) as u8
}

/// Sun `linear2alaw` on a 13-bit value.
const fn alaw_from_13bit(value: i32) -> u8 {
    let (pcm, mask) = if value >= 0 {
        (value, 0xD5)
    } else {
        (-value - 1, 0x55)
    };
    let seg = segment(pcm, &ALAW_SEG_END);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut code = (seg as i32) << 4;
    if seg < 2 {
        code |= (pcm >> 1) & 0xF;
    } else {
        code |= (pcm >> seg) & 0xF;
    }
    (code ^ mask) as u8
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code as i32;
    let mut t = ((u & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    if u & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn alaw_to_linear(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    table
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    table
}

/// Indexed by the 14-bit two's-complement value (sample >> 2) masked to 14 bits.
const fn build_ulaw_encode() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        let value = if i >= 8192 {
            i as i32 - 16384
        } else {
            i as i32
        };
        table[i] = ulaw_from_14bit(value);
        i += 1;
    }
    table
}

/// Indexed by the 13-bit two's-complement value (sample >> 3) masked to 13 bits.
const fn build_alaw_encode() -> [u8; 8192] {
    let mut table = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        let value = if i >= 4096 { i as i32 - 8192 } else { i as i32 };
        table[i] = alaw_from_13bit(value);
        i += 1;
    }
    table
}

const fn build_ulaw_to_alaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_from_13bit((ulaw_to_linear(i as u8) as i32) >> 3);
        i += 1;
    }
    table
}

const fn build_alaw_to_ulaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_from_14bit((alaw_to_linear(i as u8) as i32) >> 2);
        i += 1;
    }
    table
}

static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_decode();
static ALAW_TO_LINEAR: [i16; 256] = build_alaw_decode();
static LINEAR_TO_ULAW: [u8; 16384] = build_ulaw_encode();
static LINEAR_TO_ALAW: [u8; 8192] = build_alaw_encode();
static ULAW_TO_ALAW: [u8; 256] = build_ulaw_to_alaw();
static ALAW_TO_ULAW: [u8; 256] = build_alaw_to_ulaw();

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference encoder, written the straightforward way, to check the tables against.
    fn reference_ulaw(sample: i16) -> u8 {
        ulaw_from_14bit((sample as i32) >> 2)
    }

    #[test]
    fn known_values() {
        assert_eq!(Codec::Pcmu.encode_sample(0), 0xFF);
        assert_eq!(Codec::Pcma.encode_sample(0), 0xD5);
        assert_eq!(Codec::Pcmu.decode_sample(0xFF), 0);
        assert_eq!(Codec::Pcmu.decode_sample(0x7F), 0);
        assert_eq!(Codec::Pcmu.decode_sample(0x00), -32124);
        assert_eq!(Codec::Pcmu.decode_sample(0x80), 32124);
        assert_eq!(Codec::Pcma.decode_sample(0xD5), 8);
        assert_eq!(Codec::Pcma.decode_sample(0x2A), -32256);
        assert_eq!(Codec::Pcma.decode_sample(0xAA), 32256);
        assert_eq!(Codec::Pcmu.silence(), Codec::Pcmu.encode_sample(0));
        assert_eq!(Codec::Pcma.silence(), Codec::Pcma.encode_sample(0));
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for code in 0..=255u8 {
                let linear = codec.decode_sample(code);
                let again = codec.encode_sample(linear);
                // Mu-law has two zeros (0x7F and 0xFF); everything else is exact.
                assert_eq!(
                    codec.decode_sample(again),
                    linear,
                    "{codec:?} code {code:#04x}"
                );
            }
        }
    }

    #[test]
    fn encode_table_matches_the_reference_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(Codec::Pcmu.encode_sample(sample), reference_ulaw(sample));
            assert_eq!(
                Codec::Pcma.encode_sample(sample),
                alaw_from_13bit((sample as i32) >> 3)
            );
        }
    }

    #[test]
    fn quantisation_error_is_bounded_by_the_segment_step() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for sample in (i16::MIN..=i16::MAX).step_by(7) {
                let back = codec.decode_sample(codec.encode_sample(sample)) as i32;
                let error = (back - sample as i32).abs();
                // The largest G.711 step is 1024 (mu-law) or 1024 (A-law) at full scale.
                assert!(error <= 1024, "{codec:?} {sample} -> {back}");
                if (sample as i32).abs() < 64 {
                    assert!(error <= 8, "{codec:?} {sample} -> {back}");
                }
            }
        }
    }

    #[test]
    fn transcoding_keeps_the_sound() {
        for code in 0..=255u8 {
            let mu = Codec::Pcmu.decode_sample(code) as i32;
            let a = Codec::Pcma.decode_sample(Codec::Pcmu.transcode_byte(code, Codec::Pcma)) as i32;
            assert!(
                (mu - a).abs() <= mu.abs() / 16 + 16,
                "{code:#04x}: {mu} vs {a}"
            );
            let a_code = code;
            let a_lin = Codec::Pcma.decode_sample(a_code) as i32;
            let mu_back =
                Codec::Pcmu.decode_sample(Codec::Pcma.transcode_byte(a_code, Codec::Pcmu)) as i32;
            assert!((a_lin - mu_back).abs() <= a_lin.abs() / 16 + 16);
        }
        let mut payload = [0xFFu8; 4];
        Codec::Pcmu.transcode_in_place(&mut payload, Codec::Pcma);
        assert_eq!(payload, [Codec::Pcma.silence(); 4]);
    }

    #[test]
    fn slices_are_converted_whole() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 400) % 20000 - 10000) as i16)
            .collect();
        let mut coded = [0u8; 160];
        let mut back = [0i16; 160];
        assert_eq!(Codec::Pcma.encode(&pcm, &mut coded), 160);
        assert_eq!(Codec::Pcma.decode(&coded, &mut back), 160);
        for (a, b) in pcm.iter().zip(back.iter()) {
            assert!((*a as i32 - *b as i32).abs() <= 512);
        }
    }
}
