#!/bin/sh
# render-prompts.sh LIST OUTDIR - speak every line of LIST ("lang name text...") with
# espeak-ng and convert it with sox to OUTDIR/<lang>/<name>.wav, 8 kHz mono 16-bit.
# A prompt is rendered again only when LIST is newer than its file.
set -eu
list=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
while IFS= read -r line; do
    case $line in '' | '#'*) continue ;; esac
    lang=${line%% *}
    rest=${line#* }
    name=${rest%% *}
    text=${rest#* }
    case $lang in
    ru) voice=ru ;;
    en) voice=en-us ;;
    *) echo "render-prompts: unknown language '$lang' in: $line" >&2; exit 1 ;;
    esac
    case $name in
    *[!a-z0-9_]* | '') echo "render-prompts: bad prompt name '$name'" >&2; exit 1 ;;
    esac
    dst=$out/$lang/$name.wav
    [ -f "$dst" ] && [ "$dst" -nt "$list" ] && continue
    mkdir -p "$out/$lang"
    if [ "$text" = "-" ]; then
        sox -n -r 8000 -c 1 -b 16 "$tmp/p.wav" trim 0 0.15
    else
        espeak-ng -v "$voice" -s 150 -w "$tmp/raw.wav" "$text"
        # trim leading/trailing silence, level to -3 dBFS peak, then 8 kHz mono 16-bit
        sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$tmp/p.wav" \
            silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
    fi
    mv "$tmp/p.wav" "$dst"
    n=$((n + 1))
done <"$list"
echo "render-prompts: $n prompt(s) rendered into $out"
