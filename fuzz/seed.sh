#!/usr/bin/env bash
# Rebuilds the committed seed corpora in fuzz/seeds/<target>/ from the
# captured requests in scgi-proto/tests/data/corpus (nginx, Apache, lighttpd)
# plus hand-made vectors. Deterministic: run it again and `git diff` shows
# nothing unless the captures or this script changed.
#
#   bash fuzz/seed.sh            # from anywhere inside the repo
#
# Seeds stay small: bodies are cut to $BODY_MAX bytes (the 1 MiB and 100 KiB
# captures keep their head and a taste of their body; the cut makes them
# "incomplete body" inputs, which is a path worth covering too), and
# identical files are kept once.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
captures="${SCGI_CORPUS:-$root/scgi-proto/tests/data/corpus}"
seeds="$here/seeds"
BODY_MAX=${BODY_MAX:-64}

if ! compgen -G "$captures/*/*.scgi" >/dev/null; then
    echo "seed.sh: no captures in $captures" >&2
    exit 1
fi

rm -rf "$seeds"
mkdir -p "$seeds"/{decode,decode_split,roundtrip,response}

declare -A seen
# put TARGET NAME: stores stdin as seeds/TARGET/NAME unless an identical seed
# of that target exists.
put() {
    local tmp sum
    tmp=$(mktemp)
    cat >"$tmp"
    sum="$1:$(sha256sum <"$tmp" | cut -c1-64)"
    if [[ -n "${seen[$sum]:-}" ]]; then
        rm -f "$tmp"
        return
    fi
    seen[$sum]=1
    mv "$tmp" "$seeds/$1/$2"
    chmod 644 "$seeds/$1/$2"
}

# netstring NAME VALUE...: an SCGI header netstring of the given pairs.
netstring() {
    local block
    block=$(mktemp)
    while (($#)); do
        printf '%s\0%s\0' "$1" "$2" >>"$block"
        shift 2
    done
    printf '%d:' "$(wc -c <"$block")"
    cat "$block"
    printf ','
    rm -f "$block"
}

# wrap FORMAT [END]: a netstring around printf FORMAT, closed by END (',').
wrap() {
    local block
    block=$(mktemp)
    printf "$1" >"$block"
    printf '%d:' "$(wc -c <"$block")"
    cat "$block"
    printf '%s' "${2-,}"
    rm -f "$block"
}

# --- captured requests -----------------------------------------------------
for f in "$captures"/*/*.scgi; do
    frontend=$(basename "$(dirname "$f")")
    case=$(basename "$f" .scgi)
    digits=$(head -c 24 "$f" | tr -c '0-9:' '\n' | head -n1 | cut -d: -f1)
    head_len=$((${#digits} + 2 + digits))
    head -c $((head_len + BODY_MAX)) "$f" | put decode "$frontend-$case"
done

# --- hand-made requests ----------------------------------------------------
spec() {
    netstring CONTENT_LENGTH 27 SCGI 1 REQUEST_METHOD POST REQUEST_URI /deepthought
    printf 'What is the answer to life?'
}
spec | put decode spec-example
{ spec; printf 'tunnel bytes after a 101'; } | put decode after-body
{ netstring CONTENT_LENGTH 3 SCGI 1; printf 'abcdefghij'; } | put decode short-content-length
netstring CONTENT_LENGTH 0 SCGI 1 QUERY_STRING '' CONTENT_TYPE '' | put decode empty-values
netstring CONTENT_LENGTH 0 SCGI 1 HTTP_COOKIE a=1 HTTP_COOKIE b=2 | put decode duplicates
netstring SCGI 1 CONTENT_LENGTH 0 | put decode content-length-second
netstring CONTENT_LENGTH 0 SCGI 1 CONTENT_LENGTH 0 | put decode content-length-twice
netstring CONTENT_LENGTH 0 REQUEST_METHOD GET | put decode no-scgi
netstring CONTENT_LENGTH 0 SCGI 2 | put decode scgi-2
netstring CONTENT_LENGTH +1 SCGI 1 | put decode content-length-plus
netstring CONTENT_LENGTH 18446744073709551615 SCGI 1 | put decode content-length-max
netstring CONTENT_LENGTH 18446744073709551616 SCGI 1 | put decode content-length-overflow
netstring CONTENT_LENGTH 65 SCGI 1 | put decode body-over-small-limit
netstring CONTENT_LENGTH 0 SCGI 1 '' empty-name | put decode empty-name
wrap 'CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00' | put decode missing-value
wrap 'CONTENT_LENGTH\x000\x00SCGI\x001\x00' ';' | put decode missing-comma
wrap 'CONTENT_LENGTH\x000\x00SCGI\x001' | put decode unterminated
printf '0:,' | put decode empty-netstring
printf '07:' | put decode leading-zero
printf '65537:' | put decode head-too-large
printf '99999999999999999999999999:' | put decode length-overflow
printf '12x:' | put decode bad-length
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | put decode http-client
printf '' | put decode empty

# --- decode_split: the requests again, behind piece plans ------------------
# plan bytes: k = first byte % 16 size bytes follow, each a piece size - 1.
plans=('\x00' '\x01\x07' '\x02\x00\x3f' '\x01\xff' '\x03\x02\x00\x10')
i=0
for f in "$seeds"/decode/*; do
    (($(wc -c <"$f") <= 1024)) || continue
    { printf "${plans[i % ${#plans[@]}]}"; cat "$f"; } | put decode_split "$(basename "$f")"
    i=$((i + 1))
done

# --- roundtrip: arbitrary's input is unstructured bytes; small requests and
# some text make a varied start ---------------------------------------------
for name in spec-example duplicates empty-values no-scgi empty-name missing-value; do
    put roundtrip "$name" <"$seeds/decode/$name"
done
printf '\x01\x01\x00\x02\x00\x03REQUEST_METHOD\x00\x00GET' | put roundtrip mixed-names
printf '\x00\x02\x01\x06\x00\x01\x01' | put roundtrip repeat-reserved

# --- response: mode byte (even: parse, odd: writer case), then for parsing
# the same piece plan as decode_split ---------------------------------------
response() { # NAME PLAN TEXT
    { printf '\x00'; printf "$2"; printf '%b' "$3"; } | put response "parse-$1"
}
response spec '\x00' 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n42'
response status-line '\x01\x03' 'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n'
response http10 '\x00' 'HTTP/1.0 500 Oops\nX: y\n\nbody'
response lf-only '\x01\x00' 'Status: 302 Found\nLocation: /next\n\n'
response location-only '\x00' 'Location: http://example.test/\r\n\r\n'
response no-status '\x00' 'Content-Type: text/html\r\n\r\n<p>'
response status-no-reason '\x00' 'Status: 204\r\n\r\n'
response reason-tab '\x00' 'Status: 200 \tfine\t \r\nX-A:  padded  \r\n\r\n'
response two-status '\x00' 'Status: 200 OK\r\nStatus: 404 Not Found\r\n\r\n'
response line-and-status '\x00' 'HTTP/1.1 200 OK\r\nStatus: 200 OK\r\n\r\n'
response bad-status '\x00' 'Status: 20x OK\r\n\r\n'
response status-99 '\x00' 'Status: 099 Low\r\n\r\n'
response bad-line '\x00' 'HTTP/2 200\r\n\r\n'
response folded '\x00' 'Status: 200 OK\r\nX-Long: a\r\n b\r\n\r\n'
response no-colon '\x00' 'Status: 200 OK\r\nnocolon\r\n\r\n'
response bare-cr '\x00' 'Status: 200 OK\r\nX: a\rb\r\n\r\n'
response nul '\x00' 'Status: 200 OK\r\nX: a\0b\r\n\r\n'
response blank '\x00' '\r\n'
response set-cookie '\x02\x00\x05' 'Status: 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 12\r\n\r\n'
response unfinished '\x00' 'Status: 200 OK\r\nContent-Type: text/'
for name in spec lf-only reason-tab set-cookie; do
    { printf '\x01'; tail -c +2 "$seeds/response/parse-$name"; } | put response "write-$name"
done
printf '\x01\x01\x01\x00\x00\x01\x02\x04Location\x00/x' | put response write-location

echo "seed.sh: $(find "$seeds" -type f | wc -l) seeds, $(du -sk "$seeds" | cut -f1) KiB in $seeds"
