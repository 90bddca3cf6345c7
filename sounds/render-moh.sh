#!/bin/sh
# render-moh.sh OUT - synthesize a music-on-hold track with sox: a slow
# arpeggiated chord progression (I-vi-IV-V in C major) over soft pad chords,
# about 32 seconds, 8 kHz mono 16-bit.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"
# chord = four notes played one after another, each 0.5 s, plucked
i=0
for chord in "C4 E4 G4 C5" "A3 C4 E4 A4" "F3 A3 C4 F4" "G3 B3 D4 G4" \
    "C4 E4 G4 E5" "A3 E4 A4 C5" "F3 C4 F4 A4" "G3 D4 G4 B4"; do
    set -- $chord
    parts=""
    for note in "$@"; do
        sox -n -r 16000 -c 1 "$tmp/n$i.wav" synth 0.5 pluck "$note" fade 0 0.5 0.3 vol 0.5
        parts="$parts $tmp/n$i.wav"
        i=$((i + 1))
    done
    # the pad: the chord held for the 2 s the arpeggio takes, quiet sine tones
    sox -n -r 16000 -c 1 "$tmp/pad$i.wav" synth 2 sine "$1" sine "$2" sine "$3" \
        remix - fade 0.3 2 0.4 vol 0.12
    sox $parts "$tmp/arp$i.wav"
    sox -m "$tmp/arp$i.wav" "$tmp/pad$i.wav" "$tmp/bar$i.wav"
    bars="${bars:-} $tmp/bar$i.wav"
done
sox $bars "$tmp/phrase.wav"
sox "$tmp/phrase.wav" "$tmp/phrase.wav" "$tmp/long.wav"
sox "$tmp/long.wav" -r 8000 -c 1 -b 16 "$tmp/out.wav" reverb 30 norm -6
mv "$tmp/out.wav" "$out"
echo "render-moh: $out"
