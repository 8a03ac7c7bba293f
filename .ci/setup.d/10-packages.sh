# Debian packages the tests need: a Docker engine and debootstrap (container tests), Redis (the
# level 3 serving store), Prometheus and promtool (dashboard queries and alert rules; Debian's
# prometheus package ships promtool), Chromium and its driver (browser tests of the web pages of
# levels 3 and 5, driven by Selenium with /usr/bin/chromium and /usr/bin/chromedriver).
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
