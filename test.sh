#!/usr/bin/env bash
# The project's test command (README: "Run the tests"): builds everything in Release, runs the MSTest suite, then the
# consumer test (tests/consumer/run.sh: the packages, a project reference and the dotnet tool, used from outside the
# repository). Arguments go to `dotnet test` (e.g. ./test.sh --filter NAME); a run given arguments skips the
# consumer test.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build NoProp.sln -c Release --nologo -clp:ErrorsOnly
dotnet test --solution NoProp.sln -c Release --no-build "$@"
if [ $# -eq 0 ]; then
  tests/consumer/run.sh
fi
