#!/usr/bin/env bash
# The Debian packages the tests and benchmarks run for real: Orthanc with its DICOMweb plugin (the
# archive the gateway follows), DCMTK (storescu, a second DICOM sender; dsr2xml, the speed
# baseline), Chromium (headless, for the explain page's browser tests), openssl and rsyslog (the
# gateway's TLS and audit tests). Installs what is
# missing with apt-get (as root, or with sudo); the services themselves are started by the tests,
# on loopback, with their own configuration, and stopped afterwards.
set -euo pipefail
need=()
[ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
command -v storescu >/dev/null || need+=(dcmtk)
command -v chromium >/dev/null || need+=(chromium)
# The gateway's security tests: certificates made with openssl; rsyslogd (with its openssl
# driver) as the audit repository.
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
[ -f /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] || ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1 || need+=(rsyslog-openssl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
  echo "setup-services: install ${need[*]} (Debian packages) for the gateway tests" >&2; exit 1
fi
echo "setup-services: installing ${need[*]}"
"${SUDO[@]}" apt-get update -qq
# Debian's maintainer scripts may not start services in a container (policy-rc.d); the tests
# start Orthanc themselves.
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
