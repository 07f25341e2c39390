#!/usr/bin/env bash
# The project's test command (README: "Run the tests"): builds everything in Release and runs the MSTest suite.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build NoProp.sln -c Release --nologo -clp:ErrorsOnly
dotnet test --solution NoProp.sln -c Release --no-build "$@"
