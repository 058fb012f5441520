#pragma once

// Serving certificates for the webhook server: generated at start-up (a self-signed CA and a
// certificate it signs, for when cert-manager is absent) or read from a directory that a Secret
// volume or cert-manager keeps current.

#include <chrono>
#include <expected>
#include <string>
#include <vector>

namespace millrace::webhooks {

// A certificate (PEM, leaf first) and its private key (PEM).
struct CertificatePem {
  std::string certificate;
  std::string key;
};

// A CA certificate (EC P-256, basicConstraints CA:TRUE) valid for `validity`.
std::expected<CertificatePem, std::string> GenerateCa(
    const std::string& common_name, std::chrono::hours validity = std::chrono::hours{24 * 3650});

// A serving certificate signed by `ca`, whose subjectAltNames are `hosts`: IP addresses become IP
// SANs, anything else DNS SANs. The first host is also the common name. Serial numbers are random.
std::expected<CertificatePem, std::string> IssueServingCertificate(
    const CertificatePem& ca, const std::vector<std::string>& hosts,
    std::chrono::hours validity = std::chrono::hours{24 * 365});

// The serial number of the first certificate in `pem`, as upper-case hex ("" when unreadable).
std::string SerialNumber(const std::string& pem);

}  // namespace millrace::webhooks
