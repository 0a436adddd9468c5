#!/usr/bin/env bash
# Make a private test CA and the server certificates the tests need.
#
# usage: make-certs.sh OUTDIR
#
# Writes into OUTDIR (idempotent: does nothing when OUTDIR/.done exists):
#   ca.pem ca.key            test CA (RSA 2048), the only trust anchor tests use
#   server.pem server.key    leaf for mail.smtp-probe.test, localhost, 127.0.0.0/8
#                            addresses used by tests (127.0.10.1, 127.0.20.1..9),
#                            ::1; chain file server-chain.pem = leaf + CA
#   wrongname.pem/.key       CA-signed, but only for other.example (hostname mismatch)
#   expired.pem/.key         CA-signed for the same names, expired in 2021
#   expiring.pem/.key        CA-signed for the same names, expires in 3 days
#   selfsigned.pem/.key      self-signed for the same names (untrusted)
#   ecdsa.pem/.key           CA-signed ECDSA P-256 leaf (lean benchmark server)
#   client.pem client.key    CA-signed TLS client leaf probe-client.smtp-probe.test
#                            (extendedKeyUsage clientAuth; the key mode 600)
#   providers.pem/.key       CA-signed leaf for provider preset host names
#                            (smtp.gmail.com, smtp.sendgrid.net, smtp.fastmail.com)
#                            and 127.0.90.1-9, for tests/presets (only ever served
#                            on loopback); chain file providers-chain.pem
#
# An OUTDIR made before the client or providers leaf existed (.done but no
# client.pem / providers.pem) gets the missing leaf only, signed by its
# existing CA.
set -euo pipefail
out=${1:?usage: make-certs.sh OUTDIR}
mkdir -p "$out"
cd "$out"

# The TLS client leaf, signed by the CA in the current directory (ca.cnf
# and ca.db made below). The key is a secret file: mode 600.
client_leaf() {
  local start end
  start=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
  end=$(date -u -d '+825 days' +%Y%m%d%H%M%SZ)
  rm -f client.key
  (umask 077 && openssl req -new -newkey rsa:2048 -nodes -keyout client.key -out client.csr \
    -subj "/O=smtp-probe tests/CN=probe-client.smtp-probe.test" \
    -addext "subjectAltName=DNS:probe-client.smtp-probe.test" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
    -addext "extendedKeyUsage=clientAuth" 2>/dev/null)
  openssl ca -batch -config ca.cnf -in client.csr -out client.pem -notext \
    -startdate "$start" -enddate "$end" 2>/dev/null
  rm -f client.csr
  chmod 644 client.pem
  chmod 600 client.key
}

# The provider preset leaf, signed by the CA in the current directory.
providers_leaf() {
  local start end sans="DNS:smtp.gmail.com,DNS:smtp.sendgrid.net,DNS:smtp.fastmail.com" i
  for i in 1 2 3 4 5 6 7 8 9; do sans="$sans,IP:127.0.90.$i"; done
  start=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
  end=$(date -u -d '+825 days' +%Y%m%d%H%M%SZ)
  openssl req -new -newkey rsa:2048 -nodes -keyout providers.key -out providers.csr \
    -subj "/O=smtp-probe tests/CN=smtp.gmail.com" -addext "subjectAltName=$sans" 2>/dev/null
  openssl ca -batch -config ca.cnf -in providers.csr -out providers.pem -notext \
    -startdate "$start" -enddate "$end" 2>/dev/null
  cat providers.pem ca.pem >providers-chain.pem
  rm -f providers.csr
  chmod 644 providers.pem providers.key providers-chain.pem
}

if [ -e .done ]; then
  [ -e client.pem ] || client_leaf
  [ -e providers.pem ] || providers_leaf
  exit 0
fi

names="DNS:mail.smtp-probe.test,DNS:localhost,IP:127.0.0.1,IP:127.0.10.1"
for i in 1 2 3 4 5 6 7 8 9; do names="$names,IP:127.0.20.$i"; done
names="$names,IP:::1"

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
  -subj "/O=smtp-probe tests/CN=smtp-probe test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# A minimal CA database so 'openssl ca' can set explicit start/end dates.
mkdir -p ca.db
: >ca.db/index.txt
echo 1000 >ca.db/serial
cat >ca.cnf <<CNF
[ ca ]
default_ca = testca
[ testca ]
dir = ca.db
database = ca.db/index.txt
serial = ca.db/serial
new_certs_dir = ca.db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
commonName = supplied
organizationName = optional
CNF

# leaf NAME SANS KEYTYPE START END
leaf() {
  local name=$1 sans=$2 keytype=$3 start=$4 end=$5
  if [ "$keytype" = ec ]; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" \
      -out "$name.csr" -subj "/O=smtp-probe tests/CN=${sans%%,*}" -addext "subjectAltName=$sans" 2>/dev/null
  else
    openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" \
      -subj "/O=smtp-probe tests/CN=mail.smtp-probe.test" -addext "subjectAltName=$sans" 2>/dev/null
  fi
  openssl ca -batch -config ca.cnf -in "$name.csr" -out "$name.pem" -notext \
    -startdate "$start" -enddate "$end" 2>/dev/null
  cat "$name.pem" ca.pem >"$name-chain.pem"
  rm -f "$name.csr"
}

now_minus_day=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
leaf server "$names" rsa "$now_minus_day" "$(date -u -d '+825 days' +%Y%m%d%H%M%SZ)"
leaf wrongname "DNS:other.example" rsa "$now_minus_day" "$(date -u -d '+825 days' +%Y%m%d%H%M%SZ)"
leaf expired "$names" rsa 20200101000000Z 20210101000000Z
leaf expiring "$names" rsa "$now_minus_day" "$(date -u -d '+3 days' +%Y%m%d%H%M%SZ)"
leaf ecdsa "$names" ec "$now_minus_day" "$(date -u -d '+825 days' +%Y%m%d%H%M%SZ)"

openssl req -x509 -newkey rsa:2048 -nodes -keyout selfsigned.key -out selfsigned.pem -days 825 \
  -subj "/O=smtp-probe tests/CN=mail.smtp-probe.test" -addext "subjectAltName=$names" 2>/dev/null
cp selfsigned.pem selfsigned-chain.pem

chmod 644 ./*.pem ./*.key
client_leaf
providers_leaf
touch .done
