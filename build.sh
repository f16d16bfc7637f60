#!/usr/bin/env bash
# build.sh — the front door for building, running and testing the chat system.
# Run ./build.sh help for the targets.
set -euo pipefail
cd "$(dirname "$0")"

VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
DIST=dist

# System packages the builds and tests need, as Debian/Ubuntu names.
APT_PACKAGES=(
  gcc pkg-config                                   # cgo for the desktop app
  libwayland-dev libx11-dev libx11-xcb-dev         # Gio on Linux: windowing
  libxkbcommon-x11-dev libxcursor-dev libxfixes-dev
  libegl-dev libgles-dev libvulkan-dev libffi-dev  # Gio: graphics
  libegl-mesa0 libgl1-mesa-dri                     # Mesa software rendering (headless tests)
  xvfb xdotool x11-apps imagemagick                # real-window tests and screenshots
)
# The same for other distributions, printed when we cannot install.
DNF_PACKAGES="gcc pkgconf-pkg-config wayland-devel libX11-devel libxkbcommon-x11-devel libXcursor-devel libXfixes-devel mesa-libEGL-devel mesa-libGLES-devel vulkan-headers libffi-devel mesa-dri-drivers xorg-x11-server-Xvfb xdotool xorg-x11-apps ImageMagick"
PACMAN_PACKAGES="gcc pkgconf wayland libx11 libxkbcommon-x11 libxcursor libxfixes mesa vulkan-headers libffi xorg-server-xvfb xdotool xorg-xwd imagemagick"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

need_go() {
  command -v go >/dev/null || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
}

ldflags() { printf '%s' "-s -w -X main.version=$VERSION"; }

cmd_help() {
  cat <<USAGE
Usage: ./build.sh TARGET...

  deps      install the system packages builds and tests need (apt-get as root or
            with sudo; elsewhere prints the package names and stops)
  run       build and start a local server (127.0.0.1:7878, data in ./chat-data) and
            the desktop app connected to it; without a display, only the server
  test      install deps, then run vet, gofmt and the whole test suite with -race
  help      this text
USAGE
}

missing_apt_packages() {
  local p missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  printf '%s\n' "${missing[@]}"
}

cmd_deps() {
  if ! command -v apt-get >/dev/null; then
    cat >&2 <<MSG
build.sh: this system has no apt-get. Install these packages, then run the target again:
  Fedora:  sudo dnf install $DNF_PACKAGES
  Arch:    sudo pacman -S --needed $PACMAN_PACKAGES
  Debian/Ubuntu: sudo apt-get install ${APT_PACKAGES[*]}
MSG
    exit 1
  fi
  local missing
  mapfile -t missing < <(missing_apt_packages)
  [ ${#missing[@]} -eq 0 ] || [ -n "${missing[0]}" ] || missing=()
  if [ ${#missing[@]} -eq 0 ]; then say "system packages: all present"; return; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      die "missing packages: ${missing[*]}
Install them as root:  sudo apt-get install ${missing[*]}"
    fi
  fi
  say "installing: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

cmd_test() {
  need_go
  cmd_deps
  say "go vet"
  go vet ./...
  say "gofmt"
  local unformatted
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './dist/*'))
  [ -z "$unformatted" ] || die "not gofmt-formatted: $unformatted"
  say "go test -race"
  go test -race -timeout 15m ./...
}

cmd_run() {
  need_go
  mkdir -p "$DIST"
  local addr="${CHAT_TCP:-127.0.0.1:7878}"
  say "building the server"
  go build -ldflags "$(ldflags)" -o "$DIST/chat-server" ./server
  if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    say "no display: starting only the server on $addr (Ctrl-C stops it)"
    say "connect with: go run ./cmd/chat -server $addr -name NAME"
    exec "$DIST/chat-server" -tcp "$addr" -data "${CHAT_DATA:-chat-data}"
  fi
  say "building the desktop app"
  go build -ldflags "$(ldflags)" -o "$DIST/chat-app" ./app
  "$DIST/chat-server" -tcp "$addr" -data "${CHAT_DATA:-chat-data}" &
  local server=$!
  trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
  say "server on $addr (pid $server); starting the app — close its window to stop both"
  "$DIST/chat-app" -server "$addr"
}

[ $# -gt 0 ] || { cmd_help; exit 2; }
for target in "$@"; do
  case "$target" in
    help|-h|--help) cmd_help ;;
    deps) cmd_deps ;;
    test) cmd_test ;;
    run) cmd_run ;;
    *) cmd_help >&2; die "unknown target: $target" ;;
  esac
done
