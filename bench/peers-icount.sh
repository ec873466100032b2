#!/usr/bin/env bash
# Instructions per request of the decoder benchmark's contenders, counted by
# cachegrind (the count does not move with the machine's load): runs
# benches-peers' `icount` example at N + 1 and at 1 decodes of one input and
# prints (I(N + 1) - I(1)) / N for each input and contender, then the
# peers' counts over scgi-proto's (decode / decode + walk).
#
# Usage: bash bench/peers-icount.sh [ICOUNT_BINARY]
# e.g.   cargo build --profile bench -p benches-peers --example icount
#        bash bench/peers-icount.sh target/release/examples/icount
# Settings (environment): N (2000), INPUTS (all eight), CONTENDERS (all).
# tokio-scgi's count is less that of its `BytesMut` copies (made outside
# the measured work, as in the criterion benchmark).
set -euo pipefail
bin=${1:-target/release/examples/icount}
N=${N:-2000}
INPUTS=${INPUTS:-"nginx_get_root apache_get_root lighttpd_get_root nginx_many_headers nginx_long_header apache_post_form apache_post_json synthetic_64k_1024"}
CONTENDERS=${CONTENDERS:-"decode walk scgi tokio-scgi async-scgi"}

count() { # input contender n -> total instructions
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$bin" "$1" "$2" "$3" 2>&1 | awk '/I *refs:/ { gsub(",", "", $NF); print $NF }'
}
per() { # input contender -> instructions per request
    local a b
    a=$(count "$1" "$2" 1)
    b=$(count "$1" "$2" $((N + 1)))
    echo $(( (b - a) / N ))
}

printf '%-20s' input
for c in $CONTENDERS; do printf ' %12s' "$c"; done
echo
for input in $INPUTS; do
    declare -A got=()
    printf '%-20s' "$input"
    for c in $CONTENDERS; do
        n=$(per "$input" "$c")
        if [ "$c" = tokio-scgi ]; then
            n=$(( n - $(per "$input" tokio-scgi-copy) ))
        fi
        got[$c]=$n
        printf ' %12s' "$n"
    done
    if [ -n "${got[decode]:-}" ] && [ -n "${got[walk]:-}" ]; then
        for c in scgi tokio-scgi async-scgi; do
            [ -n "${got[$c]:-}" ] || continue
            printf '  %s %s/%s' "$c" \
                "$(awk -v p="${got[$c]}" -v d="${got[decode]}" 'BEGIN { printf "%.1f", p / d }')" \
                "$(awk -v p="${got[$c]}" -v w="${got[walk]}" 'BEGIN { printf "%.1f", p / w }')"
        done
    fi
    echo
    unset got
done
