# Sourced by the session call scripts. tests_here LOG PYTEST_ARGS... runs the GPU tests of this
# checkout (its maskattn and tests), capped at CAP_T seconds (default 200); pytest's output goes to
# $OUT/LOG. tests_with PACKAGE LOG PYTEST_ARGS... runs the GPU tests
# (.ab/PACKAGE_tests/tests if make_ab.sh made them, else this checkout's) against .ab/PACKAGE imported
# as maskattn, in a folder of its own under /tmp (one per package and log, so that several can run at
# once), capped at CAP_T seconds (default 200); pytest's output goes to $OUT/LOG.
tests_with() {
  local pkg=$1 log=$2; shift 2
  local dir=/tmp/tests_${pkg}_$log src=tests
  [ -d .ab/${pkg}_tests/tests ] && src=.ab/${pkg}_tests/tests
  rm -rf $dir && mkdir -p $dir && cp -r $src pyproject.toml $dir/ && cp -r .ab/$pkg $dir/maskattn
  (cd $dir && PYTHONPATH=. timeout ${CAP_T:-200} python -m pytest -q -x -m gpu -p no:cacheprovider "$@" \
     > $OUT/$log 2>&1)
}

tests_here() {
  local log=$1; shift
  PYTHONPATH=. timeout ${CAP_T:-200} python -m pytest -q -x -m gpu -p no:cacheprovider "$@" > $OUT/$log 2>&1
}
