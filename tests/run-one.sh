#!/bin/sh
# Runs one test under automake's TAP driver: GTest programs get --tap, scripts run as they are.
case "$1" in
  *.sh|*.py|*.mjs) exec "$@" ;;
  *) exec "$@" --tap ;;
esac
