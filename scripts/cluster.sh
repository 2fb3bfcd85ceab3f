#!/usr/bin/env bash
# The production topology on this machine, without Docker: 2 gunicorn workers, 2 Celery
# workers (online+batch, monthly+batch) and beat, against PostgreSQL and Redis on
# 127.0.0.1. Usage: scripts/cluster.sh start|stop|status|worker w1|w2   (make cluster / make cluster-stop)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/var/cluster"
PY="$ROOT/.venv/bin/python"
DB_NAME=${CLUSTER_DB:-greentier_cluster}
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
PORT=${CLUSTER_PORT:-8100}

export DATABASE_URL="$PG/$DB_NAME"
export DATABASE_ASSUME_ROLE=${DATABASE_APP_ROLE:-greentier_app}
export REDIS_URL=${CLUSTER_REDIS:-redis://127.0.0.1:6379/12}
export CELERY_BROKER_URL="$REDIS_URL"
export DJANGO_DEBUG=0
export SECRET_KEY=${SECRET_KEY:-cluster-local-secret-$(hostname)-0123456789abcdefghijklmnop}
export ALLOWED_HOSTS=127.0.0.1,localhost
export SECURE_SSL_REDIRECT=0
export METERING_SPOOL_DIR="$RUN/metering"
export PROMETHEUS_MULTIPROC_DIR="$RUN/prometheus"
export CELERY_BEAT_SCHEDULE_FILENAME="$RUN/celerybeat-schedule"
export MEDIA_ROOT=${MEDIA_ROOT:-$RUN/media}
export CARBON_OFFLINE=${CARBON_OFFLINE:-1}

start() {
  mkdir -p "$RUN" "$METERING_SPOOL_DIR" "$MEDIA_ROOT"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  psql "$PG/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1 \
    || psql "$PG/postgres" -qc "CREATE DATABASE $DB_NAME"
  # Migrations and grants as the owner; the processes below run as the app role.
  DATABASE_ASSUME_ROLE= "$PY" manage.py migrate --no-input -v0
  DATABASE_ASSUME_ROLE= "$PY" manage.py grant_app_role -v0
  "$PY" manage.py collectstatic --no-input -v0
  DJANGO_DEBUG=0 "$PY" manage.py demo_setup > "$RUN/demo.txt"
  "$PY" -m gunicorn config.wsgi:application -c config/gunicorn.py -b "127.0.0.1:$PORT" -w 2 \
    --pid "$RUN/web.pid" --daemon --access-logfile "$RUN/web-access.log" --error-logfile "$RUN/web.log"
  worker w1
  worker w2
  "$PY" -m celery -A config beat --detach --pidfile "$RUN/beat.pid" --logfile "$RUN/beat.log" -l INFO \
    -s "$CELERY_BEAT_SCHEDULE_FILENAME"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "cluster up: http://127.0.0.1:$PORT (database $DB_NAME, redis $REDIS_URL)"
  echo "demo key: $(tail -n 1 "$RUN/demo.txt")"
}

# One Celery worker by name (w1: online+batch, w2: monthly+batch); also used to replace
# a worker that died (bench/suite.py kills them on purpose).
worker() {
  case "$1" in
    w1) queues=online,batch ;;
    w2) queues=monthly,batch ;;
    *) echo "unknown worker $1 (w1 or w2)" >&2; exit 2 ;;
  esac
  rm -f "$RUN/$1.pid"
  "$PY" -m celery -A config worker -n "$1@%h" -Q "$queues" -c 1 --detach \
    --pidfile "$RUN/$1.pid" --logfile "$RUN/$1.log" -l INFO
}

stop() {
  for name in web w1 w2 beat; do
    pidfile="$RUN/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  "$PY" manage.py flush_metering >/dev/null 2>&1 || true
  echo "cluster stopped"
}

status() {
  for name in web w1 w2 beat; do
    pidfile="$RUN/$name.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$name: running ($(cat "$pidfile"))"
    else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  worker) worker "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|worker w1|w2" >&2; exit 2 ;;
esac
