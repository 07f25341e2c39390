#!/usr/bin/env bash
# The consumer test (issue 9): NoProp used from outside this repository, the way its users use it.
#  1. packs NoProp, NoProp.ML, NoProp.Data.Mnist and the noprop tool into a local folder (a unique pre-release
#     version, so that no package cached by an earlier run can stand in for this build);
#  2. a fresh app in a temporary folder references NoProp.ML, NoProp.Data.Mnist, Microsoft.ML(.ImageAnalytics) 5.0.1
#     and libtorch-cpu-linux-x64 as packages from that folder (and nuget.org); a second app references
#     src/NoProp.ML by ProjectReference. Each builds, trains on 400 MNIST images through an ML.NET pipeline, saves
#     the zip, loads it in a second process and must score the test images identically (and the package app must
#     score the project app's zip identically too);
#     The package app is also published and run from its publish folder, and an MSTest project referencing the
#     packages loads the saved model under `dotnet test` (VSTest's test host) and must score identically;
#  3. installs the tool with `dotnet tool install --tool-path` from the folder and runs `noprop train` (tiny sizes);
#  4. exports 400 MNIST PNGs with the tool, and an app referencing only NoProp.ML and ML.NET (tests/consumer/mlnet) trains
#     on them as issue 11 asks (uint labels, LoadImages' MLImage column, Fit(train, validation), early stopping, a
#     cancellation mid-training, MapKeyToValue, LastTransformer.Model) and must score identically in a fresh process.
# About 3.5 minutes of CPU time (2 cores). Nothing is patched, copied or preloaded by hand: on Debian 12 the libraries fix TorchSharp's native library
# themselves (docs/torchsharp-on-debian12.md). The user's NuGet cache is read, never written (the temporary
# packages folder takes this build's packages). Set NOPROP_CONSUMER_KEEP=1 to keep the temporary folder.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/noprop-consumer.XXXXXX")"
if [ "${NOPROP_CONSUMER_KEEP:-0}" = 1 ]; then echo "consumer: keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export XDG_CACHE_HOME="$work/cache"   # the libraries' per-user cache (the patched native library lands here)
step() { printf 'consumer: %s (%ss)\n' "$1" "$SECONDS"; }
fail() { echo "consumer: FAILED: $*" >&2; exit 1; }

version="$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' "$repo/Directory.Build.props")-consumer.$(date +%s).$$"
feed="$work/feed"
user_packages="$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')"

step "packing $version"
# The libraries as built by the repository build (PackageVersion changes the package, not the assemblies: no rebuild).
for project in NoProp NoProp.ML NoProp.Data.Mnist; do
  dotnet pack "$repo/src/$project/$project.csproj" -c Release -o "$feed" -p:PackageVersion="$version" --nologo -v q -clp:ErrorsOnly
done
dotnet pack "$repo/src/NoProp.Cli/NoProp.Cli.csproj" -c Release -o "$feed" -p:PackageVersion="$version" --nologo -v q -clp:ErrorsOnly
for p in NoProp NoProp.ML NoProp.Data.Mnist NoProp.Cli NoProp.Cli.linux-x64; do
  [ -f "$feed/$p.$version.nupkg" ] || fail "dotnet pack did not produce $p.$version.nupkg"
done

cat > "$work/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config><add key="globalPackagesFolder" value="$work/packages" /></config>
  <packageSources><add key="noprop-local" value="$feed" /></packageSources>
  <fallbackPackageFolders><add key="user-cache" value="$user_packages" /></fallbackPackageFolders>
</configuration>
XML

make_app() {   # make_app DIR REFERENCES [SOURCE-FOLDER [PROPERTIES]]: a console app, or with test/ an MSTest project
  mkdir -p "$1"
  cp "$repo/tests/consumer/${3:-app}"/*.cs "$1/"
  cp "$repo/tests/consumer/app/ConsumerData.cs" "$1/"   # shared with the test project
  cat > "$1/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    ${4:-}
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Microsoft.ML" Version="5.0.1" />
    <PackageReference Include="Microsoft.ML.ImageAnalytics" Version="5.0.1" />
    <PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />
$2
  </ItemGroup>
</Project>
XML
}

run_app() {   # run_app DIR NAME: train (saves the zip and scores), then score the zip in a second process
  local dll="$1/bin/Release/net10.0/Consumer.dll"
  dotnet "$dll" train "$work/$2.zip" "$work/$2-trained.txt" || fail "$2: training failed"
  dotnet "$dll" score "$work/$2.zip" "$work/$2-loaded.txt" || fail "$2: loading and scoring failed"
  [ "$(wc -l < "$work/$2-trained.txt")" -eq 100 ] || fail "$2: expected 100 scored rows"
  cmp -s "$work/$2-trained.txt" "$work/$2-loaded.txt" || fail "$2: the model loaded in a second process scores differently ($(diff "$work/$2-trained.txt" "$work/$2-loaded.txt" | head -3))"
}

step "app with package references"
make_app "$work/package-app" "    <PackageReference Include=\"NoProp.ML\" Version=\"$version\" />
    <PackageReference Include=\"NoProp.Data.Mnist\" Version=\"$version\" />"
cp "$work/NuGet.config" "$work/package-app/"
build() { (cd "$1" && dotnet build -c Release --nologo -v q -clp:ErrorsOnly > "$1/build.log" 2>&1) || { cat "$1/build.log" >&2; fail "$2 does not build"; }; }
build "$work/package-app" "the package app"
[ -f "$work/package-app/bin/Release/net10.0/data/mnist/train-images-idx3-ubyte.gz" ] || fail "NoProp.Data.Mnist did not put data/mnist beside the app"
run_app "$work/package-app" package
ls "$work/packages" | grep -qi '^noprop' || fail "the package app did not restore NoProp from the local folder"

step "published app"
(cd "$work/package-app" && dotnet publish -c Release --no-build -o "$work/published" --nologo -v q > "$work/publish.log" 2>&1) \
  || { cat "$work/publish.log" >&2; fail "dotnet publish failed"; }
dotnet "$work/published/Consumer.dll" score "$work/package.zip" "$work/published.txt" || fail "the published app cannot load and score"
cmp -s "$work/package-trained.txt" "$work/published.txt" || fail "the published app scores differently"

step "someone else's tests (dotnet test, VSTest host)"
make_app "$work/package-tests" "    <PackageReference Include=\"NoProp.ML\" Version=\"$version\" />
    <PackageReference Include=\"NoProp.Data.Mnist\" Version=\"$version\" />
    <PackageReference Include=\"MSTest\" Version=\"4.5.2\" />" test "<IsTestProject>true</IsTestProject>"
cp "$work/NuGet.config" "$work/package-tests/"
(cd "$work/package-tests" && NOPROP_CONSUMER_MODEL="$work/package.zip" NOPROP_CONSUMER_SCORES="$work/package-trained.txt" \
  dotnet test -c Release --nologo -v q > "$work/test.log" 2>&1) || { cat "$work/test.log" >&2; fail "dotnet test of a consumer's tests failed"; }
grep -qE 'Passed!.*Passed: *1\b' "$work/test.log" || { cat "$work/test.log" >&2; fail "the consumer's test did not pass"; }

step "app with a project reference"
# In a folder of its own, without the NuGet.config above: it restores the repository's projects as they are.
mkdir -p "$work/project"
make_app "$work/project/app" "    <ProjectReference Include=\"$repo/src/NoProp.ML/NoProp.ML.csproj\" />
    <ProjectReference Include=\"$repo/src/NoProp.Data.Mnist/NoProp.Data.Mnist.csproj\" ReferenceOutputAssembly=\"false\" />"
build "$work/project/app" "the project-reference app"
run_app "$work/project/app" project
# The same model file, loaded by the other app (other build, other process): the same scores.
dotnet "$work/package-app/bin/Release/net10.0/Consumer.dll" score "$work/project.zip" "$work/project-by-package.txt" || fail "the package app cannot load the project app's model"
cmp -s "$work/project-trained.txt" "$work/project-by-package.txt" || fail "the package app scores the project app's model differently"

step "dotnet tool install"
(cd "$work" && dotnet tool install NoProp.Cli --version "$version" --tool-path "$work/tool" --add-source "$feed" >/dev/null) || fail "dotnet tool install failed"
"$work/tool/noprop" train --method dt --epochs 1 --blocks 2 --train-size 256 --validation-size 64 --test-size 128 --output "$work/run" \
  || fail "noprop train (installed tool) failed"
grep -q '"test_accuracy"' "$work/run/metrics.json" || fail "noprop train wrote no test accuracy"

step "an ML.NET app with only NoProp.ML (issue 11)"
# PNG digits from the installed tool, one folder per class; an app that references NoProp.ML and ML.NET only (no
# NoProp.Data.Mnist) trains on them through LoadImages with uint labels, validation data, early stopping and a cancelled
# run, and checks itself (tests/consumer/mlnet/Program.cs); the model it saves must score the same in a fresh process.
"$work/tool/noprop" export-images --split train --limit 300 --output "$work/png/train" >/dev/null || fail "noprop export-images failed"
"$work/tool/noprop" export-images --split test --limit 100 --output "$work/png/test" >/dev/null || fail "noprop export-images failed"
make_app "$work/mlnet-app" "    <PackageReference Include=\"NoProp.ML\" Version=\"$version\" />" mlnet
rm "$work/mlnet-app/ConsumerData.cs"   # the other apps' MNIST rows: this one reads PNG files
cp "$work/NuGet.config" "$work/mlnet-app/"
build "$work/mlnet-app" "the ML.NET app"
mlnet_app="$work/mlnet-app/bin/Release/net10.0/Consumer.dll"
dotnet "$mlnet_app" train "$work/png" "$work/mlnet.zip" "$work/mlnet-trained.txt" || fail "the ML.NET app: training failed"
dotnet "$mlnet_app" score "$work/png" "$work/mlnet.zip" "$work/mlnet-loaded.txt" || fail "the ML.NET app: loading and scoring failed"
[ "$(wc -l < "$work/mlnet-loaded.txt")" -eq 100 ] || fail "the ML.NET app: expected 100 scored rows"
cmp -s "$work/mlnet-trained.txt" "$work/mlnet-loaded.txt" || fail "the ML.NET app: the model loaded in a fresh process scores differently ($(diff "$work/mlnet-trained.txt" "$work/mlnet-loaded.txt" | head -3))"

if [ -n "$(find "$XDG_CACHE_HOME" -name libLibTorchSharp.so 2>/dev/null)" ]; then
  echo "consumer: TorchSharp's native library was patched at run time (this system's libstdc++ lacks GLIBCXX_3.4.32)"
fi
step "passed"
