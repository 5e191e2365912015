#!/bin/sh
# Makes the lab's speech: what lab callees say in conversation, what lab agents say, and the two
# messages the demo campaign plays (abandon, voicemail). espeak-ng and sox, 8 kHz 16-bit mono,
# telephone band, peak-normalised; reproducible (espeak-ng and sox are deterministic here).
#
#     sh crates/lab/audio/generate.sh      # rewrites crates/lab/audio/*.wav
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { # file voice wpm pitch peak_dbfs text
    espeak-ng -v "$2" -s "$3" -p "$4" -w "$tmp/raw.wav" "$6"
    sox -D "$tmp/raw.wav" -r 8000 -b 16 -c 1 "$1" \
        silence 1 0.01 -45d reverse silence 1 0.01 -45d reverse \
        sinc 300-3400 gain -n "$5"
}

say customer_01.wav en-us+f2 160 50 -6 "Oh, hi. Yes, I did get your letter about the renewal."
say customer_02.wav en-gb+m1 150 40 -8 "Hmm. How much is it going to be this year?"
say customer_03.wav en-us+m3 170 45 -5 "That sounds like a bit more than last time. Is there anything cheaper?"
say customer_04.wav en-029+m2 150 55 -7 "Okay. And does that still cover the car and the house?"
say customer_05.wav en-us+f4 165 60 -6 "Let me think about it for a second. Alright, that works for me."
say customer_06.wav en-gb-scotland+f5 155 50 -9 "Could you send me the details by email? I would like to read them first."

say agent_01.wav en-us+m7 165 45 -6 "Hi, this is Sam calling from ACME Insurance about your policy renewal. Do you have a minute?"
say agent_02.wav en-us+m7 165 45 -6 "Great. Your renewal price this year is four hundred and twenty dollars."
say agent_03.wav en-us+m7 165 45 -6 "We also have a basic plan that saves you about sixty dollars a year."
say agent_04.wav en-us+m7 165 45 -6 "Yes, it covers both, exactly like your current policy."
say agent_05.wav en-us+m7 165 45 -6 "Of course. I will send the details by email today. Thank you for your time."

say abandon.wav en-us+f3 160 50 -6 "Hello, this is ACME Insurance calling about your policy renewal. We are sorry we missed you, and we will call you back. To stop our calls, call 2 0 2, 5 5 5, 0 1 4 3."
say voicemail.wav en-us+f3 160 50 -6 "Hello, this is ACME Insurance with a message about your policy renewal. Please call us back at 2 0 2, 5 5 5, 0 1 4 3. Thank you, and have a good day."
