#!/usr/bin/env python3
"""Generate a "world" corpus for answering-machine detection, with a tuning part and a hold-out.

Where generate.py makes the project's small committed corpus, this makes, on demand, a corpus of
lines the detector has never heard: many voices (espeak-ng languages and variants, flite voices)
at many speeds and pitches, human openings of one to eight words with fillers and repeats,
machine greetings from one second to thirty with and without beeps, carrier announcements, SIT
tones and hold music, under noise of several kinds (white, pink, brown, babble of other speech,
mains hum, music, a television in the room) at 40 to 10 dB SNR, speech levels from -40 to -6
dBFS, G.711 mu-law or A-law round trips, packet loss, jitter-buffer slips, clipping and late
starts.

    python3 crates/media/corpus/world.py --out DIR [--clips N] [--part tune|holdout|both] [--seed S]

writes DIR/human/*.wav, DIR/machine/*.wav (8 kHz 16-bit mono, already through the codec) and
DIR/labels.csv, then prints the manifest's sha256: the same arguments give the same digest (the
manifest holds each clip's audio digest), so a figure can be checked by regenerating.

The split: every voice and every script (the exact words said) is assigned to `tune` or
`holdout` by a seeded hash of its name, a third of them to the hold-out. A hold-out clip uses only
hold-out voices and scripts (the callee's, and the voices in its babble or television), so tuning
on `tune` never hears any of them.

Needs python3 with numpy, espeak-ng, flite and sox.
"""

import argparse
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import wave

try:
    import numpy as np
except ImportError:  # pragma: no cover - reported to the user
    sys.exit("world.py needs numpy (apt install python3-numpy, or pip install numpy)")

RATE = 8000
HOLDOUT_SHARE = 3  # one in three voices and scripts is held out
FLITE_SHARE = 0.3

ESPEAK_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                "en-gb-x-gbcwmd", "en-029", "en-us-nyc", "en"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "Annie", "Andy", "Alex", "Alicia", "Andrea", "Auntie", "Belinda", "Benjamin",
                   "Caleb", "David", "Ed", "Gene", "Hugo", "Jacky", "Lee", "Linda", "Mike",
                   "Paul", "Rob", "Robert", "Steph", "Storm", "Zac", "klatt", "klatt2", "klatt3",
                   "croak", "grandma", "grandpa", "norbert", "shelby", "travis", "victor"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]

FIRST = ["John", "Maria", "Karen", "Mike", "Priya", "Tom", "Lisa", "Ahmed", "Sofia", "Dan",
         "Grace", "Luis", "Mei", "Peter", "Fatima", "Olga", "Kevin", "Rosa", "Sam", "Helen"]
SURNAME = ["Smith", "Garcia", "Patel", "Johnson", "Nguyen", "Brown", "Kowalski", "Okafor",
           "Miller", "Schmidt", "Rossi", "Murphy", "Chen", "Taylor", "Ivanova", "Haddad"]

FILLERS = ["Uh,", "Um,", "Oh,", "Er,", "Ah,", "Mm,", "Yeah,", "Sorry,"]
GREETS = ["Hello?", "Hello.", "Hi.", "Hey.", "Yes?", "Yeah?", "Hullo?", "Yep?", "Hiya.",
          "Good morning.", "Good afternoon.", "Good evening.", "Speaking.", "Hello there.",
          "Yes, hello?", "Hi there."]
IDENTS = ["This is {f}.", "{f} speaking.", "{f} here.", "{s} residence.", "It's {f}.",
          "{f} {s}.", "{s} speaking.", "Doctor {s}."]
QUESTIONS = ["Who's this?", "Who is calling?", "Can I help you?", "Is anyone there?",
             "Who is it?", "What is it?", "How can I help?", "Can you hear me?",
             "Who am I speaking to?", "What do you want?"]
SECOND = ["Hello?", "Hello??", "Anyone there?", "Hello, is someone there?", "Hello? Hello?"]

M_OPEN = ["Hi, you've reached {f}.", "Hello, this is {f}.", "You have reached the {s} residence.",
          "Hi, it's {f}.", "Hey, it's me.", "Thank you for calling {s} and Sons.",
          "This is {f}'s phone.", "Hi, you've got {f} and {g}.", "Hello, {s} Dental.",
          "You've reached the voicemail of {f} {s}.", "Hey, {f} here."]
M_MIDDLE = ["I can't come to the phone right now.", "We're not available at the moment.",
            "Sorry I missed your call.", "I'm either on the other line or away from my desk.",
            "Our office is now closed.", "Our hours are Monday through Friday, nine to five.",
            "I'm out of the office until Monday, with limited access to email.",
            "If this is an emergency, please hang up and dial nine one one.",
            "For sales, press one. For support, press two.",
            "I'm probably out walking the dog, or I just can't find my phone again.",
            "Your call is important to us.", "We will get back to you as soon as we can.",
            "Please note that this mailbox is checked once a day."]
M_CLOSE = ["Leave a message.", "Please leave your name and number after the tone.",
           "Leave a message and I'll call you back.", "Thanks, bye.", "Have a great day.",
           "Leave a message after the beep.", "Talk soon.", "Please leave a detailed message."]
M_SHORT = ["Leave a message.", "Hi, it's me.", "It's {f}, leave a message.", "{f}. Message.",
           "Not here. Beep.", "Hi, leave a message.", "You know what to do.", "Speak.",
           "{s}, leave a message.", "Go ahead."]
CARRIER = ["The person you are trying to reach is not available. At the tone, please record "
           "your message. When you have finished recording, you may hang up.",
           "Your call has been forwarded to an automated voice messaging system. {n} is not "
           "available. At the tone, please record your message.",
           "The subscriber you have dialed is not available. Please leave a message after the tone.",
           "Welcome to the voice mail system. The mailbox of {n} is full.",
           "The number you have called is unavailable. Please try again later.",
           "Please hold while we try to connect you. Your call is being transferred.",
           "The mobile phone you are calling is switched off. Please try again later.",
           "Sorry, the person you are calling cannot take your call. Please leave a message."]
SIT_ANNOUNCE = ["The number you have dialed is not in service. Please check the number and try "
                "again.", "We're sorry, all circuits are busy now. Please try your call again "
                "later.", "Your call cannot be completed as dialed.",
                "The number you have reached has been disconnected.",
                "The number {n} is not in service.", "You have dialed {n}. This number is "
                "no longer in service.", "Sorry, {n} cannot be reached at this time.",
                "The call cannot be connected. Please hang up and try again."]
FAKE_HELLO = [("Hello?", "Ha, got you, this is a machine. Leave a message."),
              ("Hello? Hello?", "Sorry, I can't hear you, I'm a recording. Leave a message."),
              ("Hi!", "Just kidding, we're not here right now. Leave a message."),
              ("Yeah?", "I'm not around, leave a message."),
              ("Hello, {f} speaking.", "Only joking, {f} is away. Leave a message."),
              ("Hi, it's {f}.", "I can't take your call, so leave a message."),
              ("Hello?", "Hi, you've reached {f}. Leave a message.")]
BACKGROUND = ["And in other news tonight, the city council has voted to approve the new budget, "
              "which includes funding for road repairs and two new schools.",
              "Stay tuned, because after the break we will be back with the weather forecast for "
              "the weekend, and it looks like rain is finally on the way.",
              "I told him we should have left earlier, but he never listens, does he? Anyway, "
              "the traffic was terrible all the way to the station.",
              "Welcome back to the show. Tonight our guests will be cooking a three course dinner "
              "with nothing but what they found in the garden.",
              "Did you see the match last night? Unbelievable. Two goals in the last five minutes, "
              "and the whole stadium went quiet.",
              "Can you pass me the salt? Thanks. So what time is your sister coming tomorrow, "
              "before lunch or after?",
              "The markets closed lower today as investors worried about interest rates and the "
              "price of oil, which rose for the third week running.",
              "Police are asking drivers to avoid the motorway this evening after a lorry shed its "
              "load near junction twelve.",
              "Right, everyone, gather round, we have got a lot to get through this afternoon so "
              "let us make a start.",
              "In the garden this week we will look at pruning roses and planting bulbs for the "
              "spring."]

NOISES = ["none", "white", "pink", "brown", "babble", "hum", "music", "tv"]
SNRS = [40, 30, 25, 20, 15, 10]
BEEP_HZ = [440, 500, 600, 750, 850, 1000, 1200, 1400, 1800, 2000]
SIT_TONES = [(913.8, 1370.6, 1776.7), (985.2, 1428.5, 1776.7), (913.8, 1428.5, 1776.7)]

HUMAN_KINDS = [("hello", 30), ("question", 22), ("name", 22), ("filler", 14), ("repeat", 12)]
MACHINE_KINDS = [("short", 16), ("medium", 24), ("long", 22), ("carrier", 14), ("sit", 6),
                 ("music", 8), ("fake_hello", 4), ("silence", 4)]
CLIP_SECONDS = 9.0


def split_of(seed, name):
    """tune or holdout, by a seeded hash of a voice's or script's name."""
    h = hashlib.sha256(("%d:%s" % (seed, name)).encode()).digest()
    return "holdout" if int.from_bytes(h[:4], "big") % HOLDOUT_SHARE == 0 else "tune"


def all_voices():
    voices = ["espeak:%s+%s" % (lang, var) for lang in ESPEAK_LANGS for var in ESPEAK_VARIANTS]
    return voices + ["flite:%s" % v for v in FLITE_VOICES]


def g711_tables():
    """Round-trip tables: int16 (as index + 32768) -> int16 after mu-law / A-law coding."""
    x = np.arange(-32768, 32768, dtype=np.int64)
    # mu-law, as the Sun reference coder (14-bit linear, bias 33, segments by search)
    v = x >> 2
    neg = v < 0
    v = np.minimum(np.where(neg, -v, v), 8159) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), v)
    q = np.where(seg >= 8, 0xF, (v >> (seg + 1)) & 0xF)
    seg = np.minimum(seg, 7)
    dec = (((q << 3) + 0x84) << seg) - 0x84
    mulaw = np.where(neg, -dec, dec)
    # A-law (13-bit linear, segments as in the ITU reference code)
    v = x >> 3
    neg = v < 0
    v = np.where(neg, -v - 1, v)
    seg_end = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    seg = np.searchsorted(seg_end, v)
    q = np.where(seg < 2, (v >> 1) & 0xF, (v >> np.maximum(seg, 1)) & 0xF)
    q = np.where(seg >= 8, 0xF, q)
    seg = np.minimum(seg, 7)
    t = (q << 4) + 8
    t = np.where(seg >= 1, ((q << 4) + 0x108) << np.maximum(seg - 1, 0), t)
    alaw = np.where(neg, -t, t)
    return {"mulaw": mulaw.astype(np.int16), "alaw": alaw.astype(np.int16)}


def band(x, lo=300.0, hi=3400.0):
    """Telephone band by FFT mask (gentle edges)."""
    n = len(x)
    if n < 16:
        return x
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    mask = np.clip((f - lo * 0.7) / (lo * 0.3), 0, 1) * np.clip((hi * 1.1 - f) / (hi * 0.1), 0, 1)
    return np.fft.irfft(spec * mask, n)


def frame_rms(x, ms=10):
    m = RATE * ms // 1000
    k = len(x) // m
    if k == 0:
        return np.array([np.sqrt(np.mean(x ** 2) + 1e-12)])
    return np.sqrt(np.mean(x[:k * m].reshape(k, m) ** 2, axis=1) + 1e-12)


def active_rms(x):
    """RMS of the frames within 30 dB of the loudest: the level of speech while speaking."""
    r = frame_rms(x)
    active = r[r >= r.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(active ** 2)))


class Speaker:
    """Text to 8 kHz telephone-band speech, trimmed, cached per (voice, rate, pitch, text)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.cache = {}
        self.n = 0

    def say(self, voice, text, rate, pitch):
        key = (voice, text, rate, pitch)
        if key in self.cache:
            return self.cache[key]
        self.n += 1
        raw = os.path.join(self.tmp, "r%d.wav" % self.n)
        out = os.path.join(self.tmp, "o%d.wav" % self.n)
        engine, name = voice.split(":", 1)
        if engine == "espeak":
            wpm = int(round(175 * rate))
            cmd = ["espeak-ng", "-v", name, "-s", str(wpm), "-p", str(pitch), "-w", raw, text]
        else:
            cmd = ["flite", "-voice", name, "-t", text, "-o", raw,
                   "--setf", "duration_stretch=%.2f" % (1.0 / rate),
                   "--setf", "int_f0_target_mean=%d" % (80 + 2 * pitch)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        subprocess.run(["sox", "-D", raw, "-r", str(RATE), "-b", "16", "-c", "1", out,
                        "silence", "1", "0.01", "-45d", "reverse", "silence", "1", "0.01", "-45d",
                        "reverse"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with wave.open(out) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        os.unlink(raw)
        os.unlink(out)
        pcm = band(pcm)
        pcm /= max(np.abs(pcm).max(), 1.0)
        self.cache[key] = pcm
        return pcm


def music(rng, n):
    """Synthesised hold music: chords with harmonics and note envelopes, a melody on top."""
    out = np.zeros(n)
    roots = np.array([196.0, 220.0, 246.9, 261.6, 293.7, 329.6, 349.2, 392.0])
    tempo = rng.choice([0.2, 0.3, 0.45, 0.6])
    t = 0
    while t < n:
        root = rng.choice(roots)
        length = int(tempo * RATE * rng.choice([1, 2, 2, 4]))
        k = np.arange(min(length, n - t))
        env = np.exp(-rng.uniform(0.5, 3.0) * k / length) * np.minimum(1.0, k / 80.0)
        s = np.zeros(len(k))
        for f in (root, root * 1.26, root * 1.5):
            ph = 2 * np.pi * f * k / RATE
            s += np.sin(ph) + 0.4 * np.sin(2 * ph) + 0.2 * np.sin(3 * ph)
        if rng.random() < 0.7:
            f = rng.choice(roots) * 2
            s += 1.5 * np.sin(2 * np.pi * f * k / RATE) * np.exp(-2.0 * k / length)
        out[t:t + len(k)] += env * s * rng.uniform(0.6, 1.0)
        t += length
    return band(out)


def coloured(rng, n, alpha):
    """Noise with power spectrum 1/f^alpha (0 white, 1 pink, 2 brown), telephone band."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    f[0] = f[1]
    return band(np.fft.irfft(spec / f ** (alpha / 2), n))


def hum(rng, n):
    base = rng.choice([50.0, 60.0])
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for h in range(1, 24):
        amp = (1.0 if h % 2 else 0.4) / h ** 0.7
        out += amp * np.sin(2 * np.pi * base * h * t + rng.uniform(0, 2 * np.pi))
    return band(out, lo=100.0)


class World:
    def __init__(self, seed, tmp):
        self.seed = seed
        self.speaker = Speaker(tmp)
        self.g711 = g711_tables()
        voices = all_voices()
        self.voices = {p: [v for v in voices if split_of(seed, "voice:" + v) == p]
                       for p in ("tune", "holdout")}
        self.background = {}

    def pick_script(self, rng, part, make):
        """A script from `make` whose split is `part` (scripts are split by their exact text)."""
        for _ in range(500):
            text = make(rng)
            if split_of(self.seed, "script:" + text) == part:
                return text
        raise RuntimeError("no script for %s" % part)

    def voice(self, rng, part):
        # flite has few voices against espeak-ng's hundreds of variants: pick the synthesiser
        # first, so a third of the clips are flite's (a different kind of synthesis entirely).
        engine = "flite:" if rng.random() < FLITE_SHARE else "espeak:"
        pool = [v for v in self.voices[part] if v.startswith(engine)] or self.voices[part]
        v = pool[rng.integers(len(pool))]
        rate = float(rng.choice([0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4]))
        pitch = int(rng.integers(20, 81))
        return v, rate, pitch

    def background_stream(self, rng, part, n):
        """Continuous speech of one background voice: a television presenter or a person."""
        v, rate, pitch = self.voice(rng, part)
        out = []
        total = 0
        while total < n:
            text = BACKGROUND[rng.integers(len(BACKGROUND))]
            s = self.speaker.say(v, text, rate, pitch)
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * RATE))
            out += [s, gap]
            total += len(s) + len(gap)
        x = np.concatenate(out)
        start = int(rng.integers(0, max(1, len(x) - n)))
        return x[start:start + n]

    def noise(self, rng, part, kind, n):
        if kind == "white":
            return coloured(rng, n, 0.0)
        if kind == "pink":
            return coloured(rng, n, 1.0)
        if kind == "brown":
            return coloured(rng, n, 2.0)
        if kind == "hum":
            return hum(rng, n)
        if kind == "music":
            return music(rng, n)
        if kind == "babble":
            talkers = int(rng.integers(4, 9))
            return sum(self.background_stream(rng, part, n) * rng.uniform(0.5, 1.0)
                       for _ in range(talkers))
        if kind == "tv":
            speech = self.background_stream(rng, part, n)
            bed = music(rng, n)
            bed *= active_rms(speech) / max(active_rms(bed), 1e-9) * 10 ** (-rng.uniform(6, 15) / 20)
            return speech + bed
        raise ValueError(kind)


def human_script(rng, f, s):
    def pick(xs):
        return xs[rng.integers(len(xs))].format(f=f, s=s)
    return {
        "hello": lambda: pick(GREETS),
        "question": lambda: pick(GREETS) + " " + pick(QUESTIONS),
        "name": lambda: (pick(GREETS) + " " if rng.random() < 0.6 else "") + pick(IDENTS)
        + (" " + pick(QUESTIONS) if rng.random() < 0.2 else ""),
        "filler": lambda: pick(FILLERS) + " " + (lambda g: g[0].lower() + g[1:])(pick(GREETS))
        + (" " + pick(QUESTIONS) if rng.random() < 0.4 else ""),
        "repeat": lambda: (lambda g: g + " " + g)(pick(["Hello?", "Hello.", "Hi.", "Yes?", "Hey."]))
        + (" " + pick(QUESTIONS) if rng.random() < 0.3 else ""),
    }


def machine_script(rng, kind, f, s):
    g = FIRST[rng.integers(len(FIRST))]
    n = " ".join(str(d) for d in rng.integers(0, 10, 3)) + ", " + \
        " ".join(str(d) for d in rng.integers(0, 10, 4))

    def pick(xs):
        return xs[rng.integers(len(xs))].format(f=f, s=s, g=g, n=n)
    if kind == "short":
        return pick(M_SHORT)
    if kind == "medium":
        return pick(M_OPEN) + " " + pick(M_CLOSE)
    if kind == "long":
        middles = rng.choice(len(M_MIDDLE), size=int(rng.integers(1, 5)), replace=False)
        return pick(M_OPEN) + " " + " ".join(M_MIDDLE[i] for i in middles) + " " + pick(M_CLOSE)
    if kind == "carrier":
        return pick(CARRIER)
    if kind == "sit":
        return pick(SIT_ANNOUNCE)
    if kind == "music":
        return pick(M_OPEN) + " " + pick(M_CLOSE)
    if kind == "fake_hello":
        a, b = FAKE_HELLO[rng.integers(len(FAKE_HELLO))]
        return (a + " | " + b).format(f=f)
    return ""


def names(rng):
    return FIRST[rng.integers(len(FIRST))], SURNAME[rng.integers(len(SURNAME))]


def tone(freq, seconds, amp=1.0):
    n = int(seconds * RATE)
    k = np.arange(n)
    ramp = np.minimum(1.0, np.minimum(k, n - k) / 40.0)
    return amp * ramp * np.sin(2 * np.pi * freq * k / RATE)


def make_clip(world, part, truth, kind, index):
    """One clip: (samples int16, label dict)."""
    rng = np.random.default_rng([world.seed, 1 if part == "holdout" else 0, index])
    voice, rate, pitch = world.voice(rng, part)
    n = int(CLIP_SECONDS * RATE)
    track = np.zeros(n)
    speech_mask = np.zeros(n, dtype=bool)
    row = {"voice": voice, "rate": rate, "pitch": pitch, "beep_hz": "", "lead_ms": "",
           "start": "clean", "words": "", "script": ""}
    greeting_end = None

    def place(x, at):
        end = min(n, at + len(x))
        if end > at:
            track[at:end] += x[:end - at]
            speech_mask[at:end] = True
        return end

    if truth == "human":
        text = world.pick_script(rng, part, lambda r: human_script(r, *names(r))[kind]())
        words = world.speaker.say(voice, text, rate, pitch)
        lead = rng.uniform(0.1, 1.0) if rng.random() < 0.75 else rng.uniform(1.0, 2.2)
        if rng.random() < 0.12:
            # The stream starts after the callee began: the first 50-250 ms are cut off.
            words = words[int(min(rng.uniform(0.05, 0.25), 0.25 * len(words) / RATE) * RATE):]
            lead = 0.0
            row["start"] = "late"
        at = int(lead * RATE)
        end = place(words, at)
        greeting_end = end / RATE
        if rng.random() < 0.3:
            again_text = SECOND[rng.integers(len(SECOND))]
            again = world.speaker.say(voice, again_text, rate, pitch)
            wait = rng.uniform(1.6, 3.0)
            place(again, end + int(wait * RATE))
        row["lead_ms"] = int(lead * 1000)
        row["words"] = len(text.split())
        row["script"] = text
        n = min(n, int((greeting_end + 4.0) * RATE))
    else:
        text = ""
        if kind != "silence":
            text = world.pick_script(rng, part, lambda r: machine_script(r, kind, *names(r)))
        row["script"] = text
        lead = rng.uniform(0.1, 0.9)
        at = int(lead * RATE)
        row["lead_ms"] = int(lead * 1000)
        if kind == "sit":
            freqs = SIT_TONES[rng.integers(len(SIT_TONES))]
            for fr, d in zip(freqs, (0.274, 0.274, 0.380)):
                at = place(tone(fr, d, 0.7), at) + int(0.004 * RATE)
            at += int(rng.uniform(0.05, 0.3) * RATE)
        if kind == "music":
            bed = music(rng, n) * 0.6
            place(bed[:n - at], at)
            if rng.random() < 0.5:
                at += int(rng.uniform(2.0, 5.0) * RATE)
        if kind == "fake_hello":
            first, rest = text.split(" | ")
            at = place(world.speaker.say(voice, first, rate, pitch), at)
            at += int(rng.uniform(0.5, 1.2) * RATE)
            text = rest
        if kind != "silence":
            spoken = world.speaker.say(voice, text, rate, pitch) if text else np.zeros(0)
            at = place(spoken, at)
            greeting_end = min(at, n) / RATE
            if kind in ("short", "medium", "long") and rng.random() < 0.55:
                at += int(rng.uniform(0.2, 0.8) * RATE)
                hz = int(BEEP_HZ[rng.integers(len(BEEP_HZ))])
                beep = tone(hz, rng.uniform(0.2, 1.0), 0.8)
                if at + len(beep) + 400 < n:
                    row["beep_hz"] = hz
                place(beep, at)
        row["words"] = len(text.split())
    track = track[:n]
    speech_mask = speech_mask[:n]

    # Level: the speech's peak at -40..-6 dBFS.
    level = float(rng.uniform(-40, -6))
    peak = np.abs(track).max()
    if peak > 0:
        track *= 32768 * 10 ** (level / 20) / peak
    # Noise of one kind at one SNR against the speech's active level.
    noise_kind = NOISES[index % len(NOISES)]
    snr = int(SNRS[(index // len(NOISES)) % len(SNRS)])
    speech_rms = active_rms(track[speech_mask]) if speech_mask.any() else 32768 * 10 ** ((level - 12) / 20)
    if noise_kind == "none":
        # A digital line still has a little hiss, 60-70 dB under the speech.
        bg = coloured(rng, n, 0.0)
        bg *= speech_rms * 10 ** (-rng.uniform(60, 70) / 20) / max(np.sqrt(np.mean(bg ** 2)), 1e-9)
        snr_label = ""
    else:
        bg = world.noise(rng, part, noise_kind, n)
        bg_rms = active_rms(bg) if noise_kind in ("babble", "tv", "music") else np.sqrt(np.mean(bg ** 2))
        bg *= speech_rms * 10 ** (-snr / 20) / max(bg_rms, 1e-9)
        snr_label = snr
    x = track + bg
    # Clipping: a hot line, peaks driven 3-12 dB past full scale.
    clipped = rng.random() < 0.1
    if clipped:
        x *= 32767 * 10 ** (rng.uniform(3, 12) / 20) / max(np.abs(x).max(), 1.0)
    # Jitter-buffer slips: every second or so 10-40 ms dropped or repeated.
    jitter = rng.random() < 0.2
    if jitter:
        parts = []
        pos = 0
        while pos < len(x):
            step = int(rng.uniform(0.6, 1.5) * RATE)
            parts.append(x[pos:pos + step])
            pos += step
            slip = int(rng.integers(1, 5)) * 80
            if rng.random() < 0.5:
                pos += slip
            else:
                parts.append(x[max(0, pos - slip):pos])
        x = np.concatenate(parts)[:n]
    pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    # Packet loss: 20 ms packets lost (concealed as silence by the receiver), 0-5 %.
    loss = float(rng.choice([0.0, 0.0, 0.01, 0.03, 0.05]))
    if loss > 0:
        packets = len(pcm) // 160
        lost = rng.random(packets) < loss
        for p in np.nonzero(lost)[0]:
            pcm[p * 160:(p + 1) * 160] = 0
    codec = "mulaw" if rng.random() < 0.55 else "alaw"
    pcm = world.g711[codec][pcm.astype(np.int64) + 32768]
    row.update({
        "truth": truth, "kind": kind, "split": part, "noise": noise_kind, "snr_db": snr_label,
        "level_dbfs": int(round(level)), "codec": codec, "loss_pct": int(loss * 100),
        "jitter": "yes" if jitter else "no", "clipped": "yes" if clipped else "no",
        "greeting_end_ms": "" if greeting_end is None else int(round(greeting_end * 1000)),
        "duration_ms": int(len(pcm) * 1000 / RATE),
    })
    return pcm, row


def schedule(kinds, count, offset):
    """`count` kinds in proportion to their weights, interleaved deterministically."""
    total = sum(w for _, w in kinds)
    out = []
    acc = {k: 0.0 for k, _ in kinds}
    for _ in range(count):
        for k, w in kinds:
            acc[k] += w / total
        k = max(acc, key=lambda key: acc[key])
        acc[k] -= 1.0
        out.append(k)
    return out[offset:] + out[:offset]


COLUMNS = ["file", "truth", "kind", "split", "greeting_end_ms", "noise", "snr_db", "level_dbfs",
           "codec", "loss_pct", "jitter", "clipped", "start", "lead_ms", "voice", "rate", "pitch",
           "words", "beep_hz", "duration_ms", "script", "sha256"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory to write (replaced)")
    ap.add_argument("--clips", type=int, default=300, help="clips per part (default 300)")
    ap.add_argument("--part", choices=["tune", "holdout", "both"], default="both")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--human-share", type=float, default=0.55)
    args = ap.parse_args()
    for tool in ("espeak-ng", "flite", "sox"):
        if shutil.which(tool) is None:
            sys.exit("world.py needs %s on PATH" % tool)
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    for d in ("human", "machine"):
        os.makedirs(os.path.join(out, d))
    parts = ["tune", "holdout"] if args.part == "both" else [args.part]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        world = World(args.seed, tmp)
        for part in parts:
            humans = int(round(args.clips * args.human_share))
            plan = [("human", k) for k in schedule(HUMAN_KINDS, humans, 0)] + \
                   [("machine", k) for k in schedule(MACHINE_KINDS, args.clips - humans, 0)]
            for i, (truth, kind) in enumerate(plan):
                pcm, row = make_clip(world, part, truth, kind, i)
                name = "%s/%s_%s_%04d_%s.wav" % (truth, part, kind, i, row["noise"])
                buf = io.BytesIO()
                with wave.open(buf, "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(RATE)
                    w.writeframes(pcm.astype("<i2").tobytes())
                with open(os.path.join(out, name), "wb") as fh:
                    fh.write(buf.getvalue())
                row["file"] = name
                row["sha256"] = hashlib.sha256(pcm.astype("<i2").tobytes()).hexdigest()[:16]
                rows.append(row)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with open(os.path.join(out, "labels.csv"), "w", newline="") as fh:
        fh.write(text.getvalue())
    digest = hashlib.sha256(text.getvalue().encode()).hexdigest()
    print("wrote %d clips to %s; manifest sha256 %s" % (len(rows), out, digest))


if __name__ == "__main__":
    main()
