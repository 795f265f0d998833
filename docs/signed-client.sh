#!/usr/bin/env bash
# A federated client of a `client_auth: "signed"` model with nothing but bash, curl and openssl (1.1.1 or later,
# for Ed25519): RFC 9421 HTTP Message Signatures by hand, as docs/security.md describes them.
#
#   SERVICE_URL=http://127.0.0.1:8000/ MODEL_ID=3 KEY_FILE=client.pem docs/signed-client.sh
#
# It makes the key (if KEY_FILE does not exist), registers the client (a request signed by the key it
# registers), reads the latest model and sends one update; it prints each answer and stops at the first
# refusal. SERVICE_URL may end in an API Gateway stage (https://abc.execute-api.eu-west-1.amazonaws.com/Prod/):
# requests go below it, but the stage is not part of what is signed.
set -euo pipefail
shopt -s inherit_errexit  # a refusal inside $(...) stops the script too

: "${SERVICE_URL:?the service root, e.g. http://127.0.0.1:8000/}" "${MODEL_ID:?the signed model id}"
KEY_FILE=${KEY_FILE:-client.pem}
UPDATE=${UPDATE:-'[[1.0, 2.0], [3.0]]'}  # the update's weights: the shapes of the model's

service=${SERVICE_URL%/}
# The signed target URI starts with scheme://host[:port] only: the stage path is left out.
origin=$(printf '%s' "$service" | sed -E 's#^([a-z]+://[^/]+).*#\1#')

[ -f "$KEY_FILE" ] || openssl genpkey -algorithm ed25519 -out "$KEY_FILE"
# The public key as the service takes it: base64 of its 32 raw bytes (the end of its DER form).
public_key=$(openssl pkey -in "$KEY_FILE" -pubout -outform DER | tail -c 32 | base64)

b64() { base64 | tr -d '\n'; }

# signed METHOD PATH BODY KEYID [CLIENT-UUID]: send one signed request; print the answer's body.
signed() {
    local method=$1 path=$2 body=$3 keyid=$4 uuid=${5:-}
    local created nonce components base digest="" signature
    created=$(date +%s)
    nonce=$(openssl rand -base64 24 | tr '+/' '-_' | tr -d '=\n')
    components='"@method" "@target-uri"'
    base="\"@method\": $method"$'\n'"\"@target-uri\": $origin$path"
    local -a headers=(-H "Content-Type: application/json")
    if [ -n "$uuid" ]; then
        components="$components \"client-uuid\""
        base="$base"$'\n'"\"client-uuid\": $uuid"
        headers+=(-H "CLIENT-UUID: $uuid")
    fi
    if [ -n "$body" ]; then
        digest="sha-256=:$(printf '%s' "$body" | openssl dgst -sha256 -binary | b64):"
        components="$components \"content-digest\""
        base="$base"$'\n'"\"content-digest\": $digest"
        headers+=(-H "Content-Digest: $digest")
    fi
    local params="($components);created=$created;keyid=\"$keyid\";nonce=\"$nonce\";alg=\"ed25519\""
    base="$base"$'\n'"\"@signature-params\": $params"
    # Ed25519 signs the base's bytes themselves (-rawin: no digest first), read from a file (openssl needs its
    # length up front); no newline at the end.
    printf '%s' "$base" >"$scratch/base"
    signature=$(openssl pkeyutl -sign -inkey "$KEY_FILE" -rawin -in "$scratch/base" | b64)
    headers+=(-H "Signature-Input: fma=$params" -H "Signature: fma=:$signature:")
    [ -z "$body" ] || headers+=(--data-binary "$body")
    curl --silent --show-error --fail-with-body -X "$method" "${headers[@]}" "$service$path"
    echo
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# 1. Register: the body names the key, the signature (keyid = that key) proves the client holds it.
registered=$(signed POST "/api/v1/models/$MODEL_ID/register_client/" "{\"public_key\": \"$public_key\"}" "$public_key")
echo "$registered"
uuid=$(printf '%s' "$registered" | sed -E 's/.*"uuid": *"([^"]+)".*/\1/')

# 2. Every later request: keyid = the client's uuid, CLIENT-UUID covered.
signed GET "/api/v1/models/$MODEL_ID/get_latest_model/" "" "$uuid" "$uuid"
signed POST "/api/v1/model_updates/" "{\"federated_model\": $MODEL_ID, \"data\": $UPDATE}" "$uuid" "$uuid"
