# Shared by scripts/demo and scripts/test: make .venv and install mloop into it with uv.
install_mloop() {
  local spec="$1"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if [ ! -x .venv/bin/uv ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
  fi
  # Bytecode is compiled here: many machines and images set PYTHONDONTWRITEBYTECODE=1,
  # and without .pyc files the CLI takes seconds to import pandas and scikit-learn.
  .venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -e "$spec"
  .venv/bin/python -m compileall -q -j 0 src >/dev/null
}
