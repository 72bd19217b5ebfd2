#!/bin/sh
# Make a throwaway PKI for the TLS tests in directory $1 with the openssl command (EC P-256 keys:
# quick to make). Files: ca.pem (the test CA), server.pem/server.key (localhost, 127.0.0.1, ::1),
# expired.pem (the same key, validity in 2020), other-ca.pem and other.pem/other.key (a server
# certificate from a CA nobody trusts), client.pem/client.key (a client certificate from ca.pem).
set -eu
d=$1
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
cat > ext.cnf <<'X'
[srv]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[cli]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
[ca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = pol
copy_extensions = none
unique_subject = no
[pol]
commonName = supplied
X
mkca() { # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
mkca ca "weft test CA"
mkca other-ca "weft untrusted CA"
key server.key
openssl req -new -key server.key -subj /CN=localhost -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile ext.cnf -extensions srv -out server.pem 2>/dev/null
key other.key
openssl req -new -key other.key -subj /CN=localhost -out other.csr 2>/dev/null
openssl x509 -req -in other.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -days 2 \
  -extfile ext.cnf -extensions srv -out other.pem 2>/dev/null
key client.key
openssl req -new -key client.key -subj /CN=client -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile ext.cnf -extensions cli -out client.pem 2>/dev/null
# expired: the server's key, valid only in 2020 (openssl ca takes explicit dates)
: > index.txt
echo 1000 > serial
openssl ca -batch -config ext.cnf -name ca -cert ca.pem -keyfile ca.key -in server.csr \
  -startdate 20200101000000Z -enddate 20200201000000Z -extfile ext.cnf -extensions srv \
  -notext -out expired.pem 2>/dev/null
