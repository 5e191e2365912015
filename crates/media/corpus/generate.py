#!/usr/bin/env python3
"""Generate the labelled answering-machine-detection corpus (8 kHz mono mu-law WAV).

Every clip is what the dialer hears after the callee answers: line noise, then either a live
person (a short word or two, then silence while they wait for the caller to speak, sometimes a
second "hello?") or a machine (a greeting that talks on for seconds, a beep, music, silence).

Reproducible, byte for byte: the only inputs are this file, espeak-ng and sox. All randomness
comes from one seeded generator; sox noise is made once with `-R` (repeatable) and cut at seeded
offsets, and sox never dithers (`-D`).

    python3 crates/media/corpus/generate.py            # writes clips/ and labels.csv next to it
    python3 crates/media/corpus/generate.py --out DIR  # writes them under DIR instead

Labels (labels.csv): file, truth (human|machine), kind, voice, speed_wpm, speech_dbfs (peak level
of the speech), noise (colour@dBFS RMS or none), split (train|test: test voices are never used for
tuning), speech_start_ms and greeting_end_ms (where the first utterance starts and the greeting
ends; for a machine the end of its spoken greeting inside the clip), beep_hz, duration_ms.
"""

import csv
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) == 3 and sys.argv[1] == "--out":
    HERE = os.path.abspath(sys.argv[2])
elif len(sys.argv) != 1:
    sys.exit("usage: generate.py [--out DIR]")
CLIPS = os.path.join(HERE, "clips")
RATE = 8000
SEED = 20261127

# Voices used for tuning, and voices held out for reporting (never looked at while tuning).
TRAIN_VOICES = ["en-us+m3", "en-us+f3", "en-gb+m1", "en-us+f2", "en-gb-x-rp+m4"]
TEST_VOICES = ["en-us+f4", "en-029+m2", "en-gb-scotland+f5", "en-us+m7"]
SPEEDS = [130, 155, 175, 200]

HELLO = ["Hello?", "Hello.", "Hi.", "Hey.", "Yeah, hello?", "Hello!", "Hullo?"]
YES = ["Yes?", "Yeah?", "Speaking.", "Yes, hello?", "Uh huh?", "Yep?"]
WHOS_THIS = [
    "Hello, who's this?",
    "Hello, who is calling?",
    "Yes, who is it?",
    "Hi, can I help you?",
    "Hello? Who is this?",
    "Yeah, what is it?",
]
NAMES = [
    "John speaking.",
    "Hello, this is Maria.",
    "Smith residence.",
    "Karen here.",
    "Good afternoon, Mike speaking.",
    "Doctor Patel.",
]
SECOND = ["Hello?", "Hello??", "Anyone there?", "Hello, is someone there?"]

SHORT_GREETING = [
    "Hi, this is Mike. Leave a message.",
    "You've reached Sarah, leave a message.",
    "Hey, it's Dan. I can't talk right now, leave a message.",
    "Hi, you've reached Tom and Lisa. Please leave a message.",
    "This is Rachel. Leave your name and number.",
    "Hello, you have reached the Garcia family. Leave a message.",
]
LONG_GREETING = [
    "Hello, you've reached the Johnson residence. We can't come to the phone right now, "
    "so please leave your name, number and a short message after the tone, and we'll call you back.",
    "Hi, this is Jennifer. Sorry I missed your call. I'm either on the other line or away from "
    "my desk. Leave me a message and I'll get back to you as soon as I can. Thanks!",
    "Hey there, you've got Chris. I'm probably out riding my bike, so leave a message and I will "
    "call you back later today.",
    "Thank you for calling Anderson Plumbing. Our office is now closed. Our hours are Monday "
    "through Friday, eight to five. Please leave a message.",
    "Hi! We're not home right now. At the beep, leave your name and number, and we'll call you "
    "back. Have a great day.",
]
CARRIER = [
    "The person you are trying to reach is not available. At the tone, please record your message. "
    "When you have finished recording, you may hang up.",
    "Your call has been forwarded to an automated voice messaging system. "
    "5 5 5, 2 1 4, 8 8 3 9, is not available. At the tone, please record your message.",
    "The subscriber you have dialed is not available. Please leave a message after the tone.",
    "The Google subscriber you have called is not available. Please leave a message after the tone.",
    "Welcome to the voice mail system. The mailbox of 4 1 5, 3 3 2, 7 6 1 0 is full.",
]
# Greetings that open like a live answer ("Hello?"), pause as a person would, then go on.
FAKE_HELLO = [
    ("Hello?", "Ha, got you, this is a machine. Leave a message."),
    ("Hello? Hello?", "Sorry, I can't hear you, I'm a recording. Leave a message."),
    ("Hi!", "Just kidding, we are not here right now. Leave a message after the beep."),
]
# What a television or a radio says in the room behind a live answer.
TV = [
    "And in other news tonight, the city council has voted to approve the new budget, which "
    "includes funding for road repairs and two new schools on the east side of town.",
    "Stay tuned, because after the break we will be back with the weather forecast for the "
    "weekend, and it looks like rain is finally on the way for most of the region.",
]
BEEP_HZ = [440, 600, 850, 1000, 1400, 1800, 2000]

# Human answers per kind, and machine greetings per kind (counts per voice list pass).
HUMAN_KINDS = [
    ("hello", 18), ("yes", 14), ("whos_this", 16), ("pause_hello", 14),
    ("name", 14), ("noisy", 14), ("quiet", 14), ("background_tv", 6),
]
MACHINE_KINDS = [
    ("short_greeting", 20), ("long_greeting", 18), ("carrier", 16), ("beep", 18),
    ("music", 12), ("music_speech", 6), ("silence", 10), ("fake_hello", 8),
]
HUMAN_SECONDS_AFTER = (1.4, 2.0)
MACHINE_SECONDS = 5.0


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def duration(path):
    with wave.open(path) as w:
        return w.getnframes() / w.getframerate()


def read_pcm(path):
    with wave.open(path) as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
        data = w.readframes(w.getnframes())
    return list(struct.unpack("<%dh" % (len(data) // 2), data))


def write_pcm(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        clipped = (max(-32768, min(32767, int(round(s)))) for s in samples)
        w.writeframes(struct.pack("<%dh" % len(samples), *clipped))


class Maker:
    def __init__(self, tmp):
        self.tmp = tmp
        self.n = 0
        self.noise = {}
        for colour in ["pinknoise", "brownnoise", "whitenoise"]:
            path = os.path.join(tmp, colour + ".wav")
            # -R: repeatable random numbers, so the noise is the same on every run.
            run("sox", "-R", "-D", "-n", "-r", str(RATE), "-c", "1", "-b", "16", path,
                "synth", "40", colour, "sinc", "200-3400", "norm", "-3")
            self.noise[colour] = read_pcm(path)

    def tmpfile(self):
        self.n += 1
        return os.path.join(self.tmp, "t%d.wav" % self.n)

    def speech(self, text, voice, wpm, pitch, peak_dbfs):
        """Speaks text, trimmed of its own silence, telephone band, at 8 kHz, peak-normalised."""
        raw = self.tmpfile()
        run("espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", raw, text)
        out = self.tmpfile()
        run("sox", "-D", raw, "-r", str(RATE), "-b", "16", out,
            "silence", "1", "0.01", "-45d", "reverse", "silence", "1", "0.01", "-45d", "reverse",
            "sinc", "300-3400", "gain", "-n", str(peak_dbfs))
        return read_pcm(out)

    def noise_track(self, rng, colour, rms_dbfs, n):
        if colour is None:
            # A digital line still has a little hiss: -72 dBFS white.
            colour, rms_dbfs = "whitenoise", -72.0
        src = self.noise[colour]
        rms = math.sqrt(sum(s * s for s in src[:8000]) / 8000.0)
        gain = 32768.0 * 10 ** (rms_dbfs / 20.0) / rms
        start = rng.randrange(0, len(src) - n - 1)
        return [s * gain for s in src[start:start + n]]


def music(rng, seconds):
    """A few bars of synthesised chords with harmonics and note envelopes (hold music)."""
    n = int(seconds * RATE)
    out = [0.0] * n
    roots = [220.0, 246.9, 261.6, 293.7, 329.6, 349.2, 392.0]
    t = 0
    tempo = rng.choice([0.25, 0.35, 0.5])
    while t < n:
        root = rng.choice(roots)
        chord = [root, root * 1.26, root * 1.5]
        length = int(tempo * RATE * rng.choice([1, 2, 2, 4]))
        amp = rng.uniform(2500, 5000)
        for k in range(min(length, n - t)):
            env = math.exp(-3.0 * k / length) * min(1.0, k / 80.0)
            s = 0.0
            for f in chord:
                ph = 2 * math.pi * f * k / RATE
                s += math.sin(ph) + 0.4 * math.sin(2 * ph) + 0.2 * math.sin(3 * ph)
            out[t + k] += amp * env * s / 3.0
        # A melody note on top, not every time.
        if rng.random() < 0.6:
            f = rng.choice(roots) * 2
            for k in range(min(length, n - t)):
                env = math.exp(-2.0 * k / length) * min(1.0, k / 40.0)
                out[t + k] += 2500 * env * math.sin(2 * math.pi * f * k / RATE)
        t += length
    return out


def beep(freq, seconds, peak):
    n = int(seconds * RATE)
    ramp = 40
    return [peak * min(1.0, k / ramp, (n - k) / ramp) * math.sin(2 * math.pi * freq * k / RATE)
            for k in range(n)]


def silence(seconds):
    return [0.0] * int(seconds * RATE)


def main():
    rng = random.Random(SEED)
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        sys.exit("generate.py needs espeak-ng and sox on PATH")
    if os.path.isdir(CLIPS):
        shutil.rmtree(CLIPS)
    os.makedirs(CLIPS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        maker = Maker(tmp)

        def voice_cycle(i):
            # Alternate train and test voices so both splits hold every kind.
            voices = TRAIN_VOICES if i % 9 < 5 else TEST_VOICES
            split = "train" if i % 9 < 5 else "test"
            return voices[i % len(voices)], split

        index = 0
        for truth, kinds in (("human", HUMAN_KINDS), ("machine", MACHINE_KINDS)):
            for kind, count in kinds:
                for _ in range(count):
                    voice, split = voice_cycle(index)
                    index += 1
                    wpm = rng.choice(SPEEDS)
                    pitch = rng.randint(30, 70)
                    noise = rng.choice([None, ("pinknoise", -60), ("pinknoise", -50),
                                        ("brownnoise", -52), ("whitenoise", -58)])
                    peak = rng.uniform(-12, -4)
                    lead = rng.uniform(0.15, 0.9)
                    beep_hz = ""
                    parts = []
                    speech_start = lead
                    greeting_end = None
                    if truth == "human":
                        text = rng.choice({"hello": HELLO, "yes": YES, "whos_this": WHOS_THIS,
                                           "pause_hello": HELLO, "name": NAMES,
                                           "noisy": HELLO + YES + WHOS_THIS + NAMES,
                                           "background_tv": HELLO + YES + WHOS_THIS,
                                           "quiet": HELLO + YES + NAMES}[kind])
                        if kind == "pause_hello":
                            lead = rng.uniform(1.2, 2.2)
                            speech_start = lead
                        if kind == "noisy":
                            noise = rng.choice([("pinknoise", -40), ("pinknoise", -34),
                                                ("brownnoise", -36), ("whitenoise", -42)])
                        if kind == "quiet":
                            peak = rng.uniform(-34, -28)
                            noise = rng.choice([None, ("pinknoise", -66), ("whitenoise", -70)])
                        words = maker.speech(text, voice, wpm, pitch, peak)
                        parts = [silence(lead), words]
                        greeting_end = lead + len(words) / RATE
                        after = rng.uniform(*HUMAN_SECONDS_AFTER)
                        if rng.random() < 0.25:
                            again = maker.speech(rng.choice(SECOND), voice, wpm, pitch, peak)
                            parts += [silence(after), again, silence(0.5)]
                        else:
                            parts.append(silence(after))
                    else:
                        lead = rng.uniform(0.1, 0.7)
                        speech_start = lead
                        parts = [silence(lead)]
                        if kind == "fake_hello":
                            hello, rest = rng.choice(FAKE_HELLO)
                            first = maker.speech(hello, voice, wpm, pitch, peak)
                            pause = rng.uniform(0.5, 1.2)
                            words = first + silence(pause) + maker.speech(rest, voice, wpm,
                                                                          pitch, peak)
                            parts.append(words)
                            greeting_end = lead + len(words) / RATE
                        elif kind in ("short_greeting", "long_greeting", "carrier", "beep"):
                            text = rng.choice({"short_greeting": SHORT_GREETING,
                                               "long_greeting": LONG_GREETING,
                                               "carrier": CARRIER,
                                               "beep": SHORT_GREETING}[kind])
                            words = maker.speech(text, voice, wpm, pitch, peak)
                            parts.append(words)
                            greeting_end = lead + len(words) / RATE
                            if kind in ("short_greeting", "beep"):
                                parts.append(silence(rng.uniform(0.2, 0.6)))
                                if kind == "beep":
                                    beep_hz = rng.choice(BEEP_HZ)
                                    parts.append(beep(beep_hz, rng.uniform(0.25, 0.8),
                                                      32768 * 10 ** (peak / 20)))
                                    beep_end = sum(len(p) for p in parts) / RATE
                                    # A beep the clip cuts off (a slow greeting) is no label.
                                    if beep_end > MACHINE_SECONDS - 0.1:
                                        beep_hz = ""
                        elif kind == "music":
                            parts.append(music(rng, MACHINE_SECONDS))
                            greeting_end = MACHINE_SECONDS
                        elif kind == "music_speech":
                            bed = music(rng, MACHINE_SECONDS)
                            words = maker.speech(rng.choice(SHORT_GREETING + LONG_GREETING),
                                                 voice, wpm, pitch, peak)
                            mixed = [b * 0.5 + (words[k] if k < len(words) else 0.0)
                                     for k, b in enumerate(bed)]
                            parts.append(mixed)
                            greeting_end = MACHINE_SECONDS
                        elif kind == "silence":
                            speech_start = None
                            noise = rng.choice([None, ("pinknoise", -55), ("whitenoise", -60)])
                    track = [s for part in parts for s in part]
                    if kind == "background_tv":
                        # Another voice across the room, 22-30 dB under the callee's.
                        tv_voice = rng.choice(TRAIN_VOICES + TEST_VOICES)
                        tv = maker.speech(rng.choice(TV), tv_voice, 160, 50,
                                          peak - rng.uniform(22, 30))
                        offset = rng.randrange(0, max(1, len(tv) - len(track)))
                        tv = (tv[offset:] + [0.0] * len(track))[:len(track)]
                        track = [a + b for a, b in zip(track, tv)]
                    if truth == "machine":
                        total = int(MACHINE_SECONDS * RATE)
                        track = (track + [0.0] * total)[:total]
                        if greeting_end is not None:
                            greeting_end = min(greeting_end, MACHINE_SECONDS)
                    colour, level = noise if noise else (None, None)
                    line = maker.noise_track(rng, colour, level, len(track))
                    mixed = [a + b for a, b in zip(track, line)]
                    name = "%s_%s_%03d.wav" % (truth, kind, index)
                    pcm = maker.tmpfile()
                    write_pcm(pcm, mixed)
                    # G.711 mu-law, as the dialer receives it from the network.
                    run("sox", "-D", pcm, "-e", "u-law", "-b", "8", os.path.join(CLIPS, name))
                    rows.append({
                        "file": "clips/" + name, "truth": truth, "kind": kind, "voice": voice,
                        "speed_wpm": wpm, "speech_dbfs": "%.1f" % peak,
                        "noise": "none" if not noise else "%s@%d" % noise,
                        "split": split,
                        "speech_start_ms": "" if speech_start is None
                        else int(round(speech_start * 1000)),
                        "greeting_end_ms": "" if greeting_end is None
                        else int(round(greeting_end * 1000)),
                        "beep_hz": beep_hz,
                        "duration_ms": int(round(len(mixed) * 1000 / RATE)),
                    })
    with open(os.path.join(HERE, "labels.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print("wrote %d clips to %s" % (len(rows), CLIPS))


if __name__ == "__main__":
    main()
