#include "webhooks/certificates.h"

#include <memory>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace millrace::webhooks {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

std::string OpenSslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  char text[256] = {};
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return what + (code != 0 ? std::string(": ") + text : std::string());
}

std::string ToPem(const Key& key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string ToPem(const Cert& cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Cert ReadCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

Key ReadKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A new certificate for `key`, subject CN=`common_name`, valid from an hour ago (clock skew) for
// `validity`; the caller adds extensions and signs.
Cert NewCertificate(const Key& key, const std::string& common_name, std::chrono::hours validity) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial_bytes[16];
  RAND_bytes(serial_bytes, sizeof(serial_bytes));
  serial_bytes[0] &= 0x7f;  // positive
  Bignum serial(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  std::chrono::duration_cast<std::chrono::seconds>(validity).count());
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return cert;
}

bool IsIpAddress(const std::string& host) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  if (ip == nullptr) return false;
  ASN1_OCTET_STRING_free(ip);
  return true;
}

}  // namespace

std::expected<CertificatePem, std::string> GenerateCa(const std::string& common_name,
                                                      std::chrono::hours validity) {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return std::unexpected(OpenSslError("generating the CA key"));
  Cert cert = NewCertificate(key, common_name, validity);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  if (!AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE") ||
      !AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash") ||
      X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return std::unexpected(OpenSslError("signing the CA certificate"));
  }
  return CertificatePem{ToPem(cert), ToPem(key)};
}

std::expected<CertificatePem, std::string> IssueServingCertificate(
    const CertificatePem& ca, const std::vector<std::string>& hosts, std::chrono::hours validity) {
  if (hosts.empty()) return std::unexpected("a serving certificate needs at least one host");
  const Cert ca_cert = ReadCert(ca.certificate);
  const Key ca_key = ReadKey(ca.key);
  if (!ca_cert || !ca_key) return std::unexpected(OpenSslError("reading the CA"));
  Key key(EVP_EC_gen("P-256"));
  if (!key) return std::unexpected(OpenSslError("generating the serving key"));
  Cert cert = NewCertificate(key, hosts.front(), validity);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  std::string sans;
  for (const std::string& host : hosts) {
    if (!sans.empty()) sans += ",";
    sans += (IsIpAddress(host) ? "IP:" : "DNS:") + host;
  }
  if (!AddExtension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(cert.get(), ca_cert.get(), NID_key_usage,
                    "critical,digitalSignature,keyEncipherment") ||
      !AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth") ||
      !AddExtension(cert.get(), ca_cert.get(), NID_subject_alt_name, sans) ||
      X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) {
    return std::unexpected(OpenSslError("signing the serving certificate for " + sans));
  }
  return CertificatePem{ToPem(cert), ToPem(key)};
}

std::string SerialNumber(const std::string& pem) {
  const Cert cert = ReadCert(pem);
  if (!cert) return "";
  Bignum serial(ASN1_INTEGER_to_BN(X509_get_serialNumber(cert.get()), nullptr));
  char* hex = BN_bn2hex(serial.get());
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  return out;
}

}  // namespace millrace::webhooks
