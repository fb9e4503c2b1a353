# Shared by scripts/demo and scripts/test: make .venv and install mloop into it with uv.
install_mloop() {
  local spec="$1"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if [ ! -x .venv/bin/uv ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
  fi
  .venv/bin/uv pip install --quiet --python .venv/bin/python -e "$spec"
}
