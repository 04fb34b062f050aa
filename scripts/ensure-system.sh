#!/usr/bin/env bash
# Installs the Debian packages the portal needs when they are missing, and makes sure a Redis
# answers. Usage: ensure-system.sh run|test   (test also needs Chromium for the browser tests)
set -euo pipefail
mode=${1:-run}

packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)
[ "$mode" = test ] && packages+=(chromium poppler-utils)  # pdftotext in the PDF tests

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
redis_hostport=${redis_url#*://}; redis_hostport=${redis_hostport#*@}; redis_hostport=${redis_hostport%%/*}
redis_host=${redis_hostport%%:*}; redis_port=${redis_hostport##*:}
[ "$redis_port" = "$redis_host" ] && redis_port=6379

redis_answers() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$redis_host/$redis_port && printf 'PING\r\n' >&3 && head -c 5 <&3" \
    2>/dev/null | grep -q PONG
}

need_redis=0
if ! redis_answers; then
  need_redis=1
  command -v redis-server >/dev/null || missing+=(redis-server)
fi

apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "Saknade systempaket / missing system packages: $*" >&2
      echo "Installera dem med: sudo apt-get install -y $*" >&2
      exit 1
    fi
  fi
  echo "Installerar systempaket: $*"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

if ((${#missing[@]})); then
  command -v apt-get >/dev/null || { echo "apt-get saknas; installera: ${missing[*]}" >&2; exit 1; }
  apt_install "${missing[@]}"
fi

if ((need_redis)); then
  if [ "$redis_host" = 127.0.0.1 ] || [ "$redis_host" = localhost ]; then
    echo "Ingen Redis svarar på $redis_host:$redis_port; startar en lokal redis-server."
    mkdir -p /tmp/portal-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" \
      --appendonly no --dir /tmp/portal-redis --logfile /tmp/portal-redis/redis.log
    for _ in $(seq 1 50); do redis_answers && break; sleep 0.1; done
    redis_answers || { echo "Redis startade inte (se /tmp/portal-redis/redis.log)" >&2; exit 1; }
  else
    echo "Varning: Redis på $redis_host:$redis_port svarar inte; arbetaren väntar tills den gör det." >&2
  fi
fi
