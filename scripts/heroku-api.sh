# Heroku Platform API helpers for .github/workflows/deploy.yml (bash; needs curl, jq and HEROKU_API_KEY).

# api METHOD PATH [JSON BODY]: the response body; fails on any HTTP error, printing Heroku's message.
api() {
  local out status
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" "https://api.heroku.com$2" \
    -H 'Accept: application/vnd.heroku+json; version=3' \
    -H "Authorization: Bearer ${HEROKU_API_KEY}" \
    -H 'Content-Type: application/json' \
    -H "${RANGE_HEADER:-X-Range-Unused: 1}" \
    ${3:+--data "$3"})
  if [ "${status:0:1}" != 2 ]; then
    echo "Heroku API $1 $2 answered ${status}: $(jq -r '.message // .' <"$out" 2>/dev/null)" >&2
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}

# current_release APP: the newest release of APP (JSON).
current_release() {
  RANGE_HEADER='Range: version ..; order=desc, max=1' api GET "/apps/$1/releases" | jq '.[0]'
}

# wait_release APP RELEASE_ID: waits (up to 15 min) while the release phase runs; prints the release, fails unless
# it succeeded.
wait_release() {
  local release status
  for _ in $(seq 1 180); do
    release=$(api GET "/apps/$1/releases/$2") || return 1
    status=$(jq -r .status <<<"$release")
    [ "$status" = pending ] || break
    sleep 5
  done
  if [ "$status" != succeeded ]; then
    echo "release $2 of $1 is ${status}: heroku releases:output $(jq -r .version <<<"$release") --app $1" >&2
    return 1
  fi
  echo "$release"
}
