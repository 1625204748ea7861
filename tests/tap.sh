# SPDX-License-Identifier: MIT
# TAP output for the shell tests (tests/layout/run-layout-check,
# tests/fuzz/run-fuzzers): source it, then
#
#   ok DESCRIPTION                 ok N - DESCRIPTION
#   not_ok DESCRIPTION             not ok N - DESCRIPTION (a failure)
#   skip REASON                    ok N # SKIP REASON
#   COMMAND | diag                 each line as a "# " comment
#   bail_out REASON                Bail out! REASON, exit 1
#   tap_done                       the plan 1..N last; returns 1 when a check
#                                  failed, else 0 (end the script with it)
#
# The counters are tap_n (checks so far) and tap_failed.  Like
# tests/integration/harness/tap.py and tests/unit/tap.h, for automake's
# tap-driver.

tap_n=0
tap_failed=0

ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $*"; }
diag() { sed 's/^/# /'; }
bail_out() { echo "Bail out! $*"; exit 1; }

tap_done() {
        echo "1..$tap_n"
        if [ "$tap_failed" -ne 0 ]; then
                echo "# $tap_failed of $tap_n failed"
                return 1
        fi
        return 0
}
