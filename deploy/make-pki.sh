#!/bin/sh
# Make (or extend) the netdetect PKI: a CA, the broker certificate, one client certificate per
# sensor, per host and per alert reader, and an Ed25519 query-signing key per sensor whose
# public half goes to every agent. A client certificate's CN names its role and id --
# host:<id>, sensor:<id>, reader:<name> -- and the broker uses it as the MQTT username its
# ACL grants topics by, so a certificate issued for one role never has another's rights.
#
# Usage: make-pki.sh [-o DIR] [-d DAYS] [-b BROKER_NAME]... [-s SENSOR_ID]... [-r READER]...
#                    [HOST_ID...]
#   -o DIR          output directory (default ./pki); existing keys are kept, so re-running
#                   with new ids only adds what is missing
#   -d DAYS         certificate lifetime (default 825)
#   -b NAME         DNS name or IP address clients use to reach the broker (repeatable;
#                   default: the output of `hostname -f`, plus localhost and 127.0.0.1)
#   -s SENSOR_ID    a sensor (repeatable); CN sensor:SENSOR_ID
#   -r READER       an alert consumer such as a SIEM forwarder (repeatable); CN reader:READER
#   HOST_ID         a host that runs the agent; CN host:HOST_ID
#
# Layout:   DIR/ca.crt ca.key broker.crt broker.key
#           DIR/sensors/ID.crt ID.key ID-signing.key ID-signing.pub
#           DIR/hosts/ID.crt ID.key
#           DIR/readers/NAME.crt NAME.key
# ca.key never leaves the machine that runs this script; keep it offline.
set -eu

out=./pki
days=825
brokers=""
sensors=""
readers=""
umask 077

die() { echo "make-pki.sh: $*" >&2; exit 2; }
check_id() {
    # Ids become MQTT usernames and topic levels: no wildcards, no '/', no spaces.
    printf '%s' "$1" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' \
        || die "invalid id '$1' (1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)"
}

while getopts "o:d:b:s:r:h" opt; do
    case "$opt" in
        o) out=$OPTARG ;;
        d) days=$OPTARG ;;
        b) brokers="${brokers:+$brokers }$OPTARG" ;;
        s) check_id "$OPTARG"; sensors="$sensors $OPTARG" ;;
        r) check_id "$OPTARG"; readers="$readers $OPTARG" ;;
        h) sed -n '2,25p' "$0"; exit 0 ;;
        *) die "see -h" ;;
    esac
done
shift $((OPTIND - 1))
for h in "$@"; do check_id "$h"; done
command -v openssl >/dev/null || die "openssl not found"

mkdir -p "$out/sensors" "$out/hosts" "$out/readers"
[ -n "$brokers" ] || brokers="$(hostname -f 2>/dev/null || hostname) localhost 127.0.0.1"

# Certificates made before the role was part of the CN (CN = bare id) get no rights from the
# ACL; say so rather than keep them silently.
for crt in "$out"/sensors/*.crt "$out"/hosts/*.crt "$out"/readers/*.crt; do
    [ -e "$crt" ] || continue
    dir=$(basename "$(dirname "$crt")")
    case $dir in sensors) role=sensor ;; hosts) role=host ;; *) role=reader ;; esac
    want="$role:$(basename "$crt" .crt)"
    cn=$(openssl x509 -in "$crt" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
    [ "$cn" = "$want" ] || die "$crt has CN '$cn', not '$want': move it and its key away and re-run to reissue it"
done

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -e "$out/ca.key" ]; then
    newkey "$out/ca.key"
    openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$days" -subj "/CN=netdetect CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.crt"
    echo "made CA $out/ca.crt"
fi

# sign NAME KEY CRT EKU [SAN]
sign() {
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$4"
        [ -z "${5:-}" ] || echo "subjectAltName=$5"
    } >"$ext"
    openssl req -new -key "$2" -subj "/CN=$1" 2>/dev/null \
        | openssl x509 -req -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
            -CAserial "$out/ca.srl" -sha256 -days "$days" -extfile "$ext" -out "$3" 2>/dev/null
    rm -f "$ext"
}

if [ ! -e "$out/broker.crt" ]; then
    san=""
    for b in $brokers; do
        if printf '%s' "$b" | grep -Eq '^[0-9.]+$|:'; then entry="IP:$b"; else entry="DNS:$b"; fi
        san="${san:+$san,}$entry"
    done
    newkey "$out/broker.key"
    sign "$(set -- $brokers; echo "$1")" "$out/broker.key" "$out/broker.crt" serverAuth "$san"
    echo "made broker certificate for: $brokers"
fi

for s in $sensors; do
    if [ ! -e "$out/sensors/$s.crt" ]; then
        newkey "$out/sensors/$s.key"
        sign "sensor:$s" "$out/sensors/$s.key" "$out/sensors/$s.crt" clientAuth
        echo "made sensor certificate $out/sensors/$s.crt"
    fi
    if [ ! -e "$out/sensors/$s-signing.key" ]; then
        openssl genpkey -algorithm ed25519 -out "$out/sensors/$s-signing.key"
        openssl pkey -in "$out/sensors/$s-signing.key" -pubout -out "$out/sensors/$s-signing.pub"
        chmod 644 "$out/sensors/$s-signing.pub"
        echo "made query-signing key $out/sensors/$s-signing.key (give agents the .pub)"
    fi
    cat <<ACL
# add to the broker ACL file for sensor $s:
user sensor:$s
topic write netdetect/v1/hosts/+/query
topic read netdetect/v1/sensors/$s/+/reports/+
topic read netdetect/v1/hosts/+/status
topic write netdetect/v1/alerts
ACL
done

for h in "$@"; do
    if [ ! -e "$out/hosts/$h.crt" ]; then
        newkey "$out/hosts/$h.key"
        sign "host:$h" "$out/hosts/$h.key" "$out/hosts/$h.crt" clientAuth
        echo "made host certificate $out/hosts/$h.crt"
    fi
done

for r in $readers; do
    if [ ! -e "$out/readers/$r.crt" ]; then
        newkey "$out/readers/$r.key"
        sign "reader:$r" "$out/readers/$r.key" "$out/readers/$r.crt" clientAuth
        echo "made alert reader certificate $out/readers/$r.crt"
    fi
    cat <<ACL
# add to the broker ACL file for alert reader $r:
user reader:$r
topic read netdetect/v1/alerts
ACL
done
chmod 644 "$out/ca.crt" "$out"/*.crt "$out"/sensors/*.crt "$out"/hosts/*.crt \
    "$out"/readers/*.crt 2>/dev/null || true
