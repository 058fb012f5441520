#include "kubeclient/client.h"

#include <array>
#include <map>
#include <mutex>
#include <utility>

#include "kubeclient/object.h"
#include "kubeclient/transport.h"
#include "kubeclient/util.h"

namespace millrace::kube {
namespace {

using internal::HttpRequest;
using internal::UrlEscape;
using nlohmann::json;

// Builds "?a=1&b=2" from the parameters that are set.
class Query {
 public:
  Query& Add(std::string_view key, std::string_view value) {
    if (value.empty()) return *this;
    text_ += text_.empty() ? '?' : '&';
    text_ += key;
    text_ += '=';
    text_ += UrlEscape(value);
    return *this;
  }
  Query& AddFlag(std::string_view key, bool value) {
    return value ? Add(key, std::string_view("true")) : *this;
  }
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

Result<json> ParseBody(const std::string& body) {
  auto parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return std::unexpected(
        MakeError(ErrorKind::kDecode, "response is not JSON: " + body.substr(0, 200)));
  }
  return parsed;
}

std::string_view PatchContentType(PatchType type) {
  // In PatchType's order: merge, JSON, strategic merge.
  static constexpr std::array<std::string_view, 3> kTypes{"application/merge-patch+json",
                                                          "application/json-patch+json",
                                                          "application/strategic-merge-patch+json"};
  const auto i = static_cast<size_t>(type);
  return i < kTypes.size() ? kTypes.at(i) : kTypes[0];
}

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(std::unique_ptr<internal::Transport> transport)
      : transport_(std::move(transport)) {}

  Result<json> Get(const ResourceRef& ref, std::string_view ns, std::string_view name,
                   const GetOptions& options) override {
    HttpRequest r;
    r.verb = "get";
    r.idempotent = true;
    r.path = ResourcePath(ref, ns, name) +
             Query().Add("resourceVersion", options.resource_version).str();
    r.timeout = options.timeout;
    return Send(r);
  }

  Result<json> List(const ResourceRef& ref, std::string_view ns,
                    const ListOptions& options) override {
    HttpRequest r;
    r.verb = "list";
    r.idempotent = true;
    r.path = ResourcePath(ref, ns) +
             Query()
                 .Add("labelSelector", options.label_selector)
                 .Add("fieldSelector", options.field_selector)
                 .Add("limit", options.limit > 0 ? std::to_string(options.limit) : std::string())
                 .Add("continue", options.continue_token)
                 .Add("resourceVersion", options.resource_version)
                 .Add("resourceVersionMatch", options.resource_version_match)
                 .str();
    return Send(r);
  }

  Result<json> Create(const ResourceRef& ref, const json& object,
                      const WriteOptions& options) override {
    // A create posts to the collection; a subresource create (eviction) to the object's name.
    return SendObject("create", "POST", ref, object,
                      options.subresource.empty() ? "" : Name(object), options);
  }

  Result<json> Update(const ResourceRef& ref, const json& object,
                      const WriteOptions& options) override {
    return SendObject("update", "PUT", ref, object, Name(object), options);
  }

  Result<json> Patch(const ResourceRef& ref, std::string_view ns, std::string_view name,
                     const json& patch, const PatchOptions& options) override {
    HttpRequest r;
    r.verb = "patch";
    r.method = "PATCH";
    r.content_type = PatchContentType(options.type);
    r.body = patch.dump();
    r.path = ResourcePath(ref, ns, name, options.subresource) +
             WriteQuery(options.field_manager, options.dry_run).str();
    return Send(r);
  }

  Result<json> Apply(const ResourceRef& ref, const json& object,
                     const ApplyOptions& options) override {
    const std::string ns = Namespace(object);
    if (auto bad = CheckNamespace(ref, ns)) return std::unexpected(*bad);
    if (options.field_manager.empty()) {
      return std::unexpected(MakeError(ErrorKind::kBadRequest, "apply needs a field manager"));
    }
    HttpRequest r;
    r.verb = "apply";
    r.method = "PATCH";
    r.idempotent = true;  // applying the same configuration twice has the same effect
    r.content_type = "application/apply-patch+yaml";  // JSON is YAML
    r.body = object.dump();
    r.path =
        ResourcePath(ref, ns, Name(object), options.subresource) +
        WriteQuery(options.field_manager, options.dry_run).AddFlag("force", options.force).str();
    return Send(r);
  }

  Result<json> Delete(const ResourceRef& ref, std::string_view ns, std::string_view name,
                      const DeleteOptions& options) override {
    json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
    if (!options.propagation_policy.empty()) {
      body["propagationPolicy"] = options.propagation_policy;
    }
    if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
    if (!options.precondition_uid.empty()) {
      body["preconditions"]["uid"] = options.precondition_uid;
    }
    if (!options.precondition_resource_version.empty()) {
      body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
    }
    if (options.dry_run) body["dryRun"] = json::array({"All"});
    HttpRequest r;
    r.verb = "delete";
    r.method = "DELETE";
    r.content_type = "application/json";
    r.body = body.dump();
    r.path = ResourcePath(ref, ns, name);
    return Send(r);
  }

  Result<void> Watch(const ResourceRef& ref, std::string_view ns, const WatchOptions& options,
                     const WatchHandler& handler, std::stop_token stop) override {
    HttpRequest r;
    r.verb = "watch";
    r.idempotent = true;
    r.path =
        ResourcePath(ref, ns) +
        Query()
            .Add("watch", "true")
            .Add("labelSelector", options.label_selector)
            .Add("fieldSelector", options.field_selector)
            .Add("resourceVersion", options.resource_version)
            .AddFlag("allowWatchBookmarks", options.allow_bookmarks)
            .Add("timeoutSeconds",
                 options.timeout_seconds ? std::to_string(*options.timeout_seconds) : std::string())
            .AddFlag("sendInitialEvents", options.send_initial_events)
            .Add("resourceVersionMatch",
                 options.send_initial_events ? std::string_view("NotOlderThan") : "")
            .str();
    WatchDecoder decoder;
    std::optional<Error> failure;
    bool ended = false;  // by an error or by the handler: deliver nothing more
    // Returns false to end the watch.
    const auto deliver = [&](Result<WatchEvent>&& event) {
      if (!event) {
        failure = std::move(event.error());
      } else if (event->type == EventType::kError) {
        failure = ErrorFromStatus(event->object);
      } else if (handler(std::move(*event))) {
        return true;
      }
      ended = true;
      return false;
    };
    auto streamed = transport_->Stream(
        r,
        [&](std::string_view bytes) {
          decoder.Feed(bytes);
          while (auto event = decoder.Next()) {
            if (!deliver(std::move(*event))) return false;
          }
          return true;
        },
        stop);
    if (failure) return std::unexpected(std::move(*failure));
    if (!streamed) return streamed;
    if (!ended && !stop.stop_requested()) {
      if (auto last = decoder.Finish(); last && !deliver(std::move(*last)) && failure) {
        return std::unexpected(std::move(*failure));
      }
    }
    return {};
  }

  Result<ResourceRef> Discover(std::string_view api_version, std::string_view kind) override {
    const std::string key(api_version);
    for (int pass = 0; pass < 2; ++pass) {
      json resources;
      {
        const std::lock_guard lock(discovery_mu_);
        if (pass == 0) {
          if (const auto it = discovery_.find(key); it != discovery_.end()) {
            resources = it->second;
          }
        }
      }
      if (resources.is_null()) {
        HttpRequest r;
        r.verb = "discovery";
        r.idempotent = true;
        r.path = key.find('/') == std::string::npos ? "/api/" + key : "/apis/" + key;
        auto list = Send(r);
        if (!list) return std::unexpected(list.error());
        resources = (*list).value("resources", json::array());
        const std::lock_guard lock(discovery_mu_);
        discovery_[key] = resources;
      }
      for (const auto& res : resources) {
        const std::string name = res.value("name", "");
        if (res.value("kind", "") != kind || name.find('/') != std::string::npos) continue;
        ResourceRef ref;
        const size_t slash = key.find('/');
        ref.group = slash == std::string::npos ? "" : key.substr(0, slash);
        ref.version = slash == std::string::npos ? key : key.substr(slash + 1);
        ref.resource = name;
        ref.namespaced = res.value("namespaced", false);
        ref.kind = std::string(kind);
        return ref;
      }
      if (pass == 0 && !resources.is_null()) continue;  // maybe a new CRD: refresh once
    }
    return std::unexpected(MakeError(ErrorKind::kNotFound,
                                     "no resource for kind " + std::string(kind) + " in " + key));
  }

 private:
  static Query WriteQuery(const std::string& field_manager, bool dry_run) {
    Query q;
    q.Add("fieldManager", field_manager);
    if (dry_run) q.Add("dryRun", "All");
    return q;
  }

  static std::optional<Error> CheckNamespace(const ResourceRef& ref, const std::string& ns) {
    if (ref.namespaced && ns.empty()) {
      return MakeError(ErrorKind::kBadRequest,
                       "a " + ref.resource + " object needs metadata.namespace");
    }
    return std::nullopt;
  }

  // `object` as the body of a POST or PUT to `name` (empty: the collection) in its namespace.
  Result<json> SendObject(std::string verb, std::string method, const ResourceRef& ref,
                          const json& object, const std::string& name,
                          const WriteOptions& options) {
    const std::string ns = Namespace(object);
    if (auto bad = CheckNamespace(ref, ns)) return std::unexpected(*bad);
    HttpRequest r;
    r.verb = std::move(verb);
    r.method = std::move(method);
    r.content_type = "application/json";
    r.body = object.dump();
    r.path = ResourcePath(ref, ns, name, options.subresource) +
             WriteQuery(options.field_manager, options.dry_run).str();
    r.timeout = options.timeout;
    return Send(r);
  }

  Result<json> Send(const HttpRequest& request) {
    auto body = transport_->Do(request);
    if (!body) return std::unexpected(std::move(body.error()));
    return ParseBody(*body);
  }

  std::unique_ptr<internal::Transport> transport_;
  std::mutex discovery_mu_;
  std::map<std::string, json> discovery_;  // guarded by discovery_mu_: apiVersion -> resources
};

}  // namespace

std::string ResourcePath(const ResourceRef& ref, std::string_view ns, std::string_view name,
                         std::string_view subresource) {
  std::string path =
      ref.group.empty() ? "/api/" + ref.version : "/apis/" + ref.group + "/" + ref.version;
  if (ref.namespaced && !ns.empty()) {
    path += "/namespaces/";
    path += ns;
  }
  path += '/';
  path += ref.resource;
  if (!name.empty()) {
    path += '/';
    path += name;
    if (!subresource.empty()) {
      path += '/';
      path += subresource;
    }
  }
  return path;
}

Result<std::string> Reader::ListPages(const ResourceRef& ref, std::string_view ns,
                                      ListOptions options,
                                      const std::function<void(json& page)>& on_page) {
  while (true) {
    auto page = List(ref, ns, options);
    if (!page) return std::unexpected(std::move(page.error()));
    const json& metadata = (*page)["metadata"];
    std::string next = metadata.is_object() ? metadata.value("continue", "") : "";
    std::string resource_version =
        metadata.is_object() ? metadata.value("resourceVersion", "") : "";
    on_page(*page);
    if (next.empty()) return resource_version;
    options.continue_token = std::move(next);
  }
}

Result<json> Reader::ListAll(const ResourceRef& ref, std::string_view ns, ListOptions options) {
  json all;
  auto listed = ListPages(ref, ns, std::move(options), [&all](json& page) {
    if (all.is_null()) {
      all = std::move(page);
      if (!all["items"].is_array()) all["items"] = json::array();
      return;
    }
    if (auto& items = page["items"]; items.is_array()) {
      auto& into = all["items"];
      for (auto& item : items) into.push_back(std::move(item));
    }
    all["metadata"] = std::move(page["metadata"]);
  });
  if (!listed) return std::unexpected(std::move(listed.error()));
  all["metadata"].erase("continue");
  all["metadata"].erase("remainingItemCount");
  return all;
}

Result<json> Client::UpdateStatus(const ResourceRef& ref, const json& object,
                                  WriteOptions options) {
  options.subresource = "status";
  return Update(ref, object, options);
}

Result<json> Client::PatchStatus(const ResourceRef& ref, std::string_view ns, std::string_view name,
                                 const json& patch, PatchOptions options) {
  options.subresource = "status";
  return Patch(ref, ns, name, patch, options);
}

Result<json> Client::ApplyStatus(const ResourceRef& ref, const json& object, ApplyOptions options) {
  options.subresource = "status";
  return Apply(ref, object, options);
}

Result<ResourceRef> Client::DiscoverFor(const json& object) {
  return Discover(object.value("apiVersion", ""), object.value("kind", ""));
}

Result<std::unique_ptr<Client>> NewClient(const Config& config,
                                          std::shared_ptr<RequestMetrics> metrics) {
  auto transport = internal::Transport::Create(config, std::move(metrics));
  if (!transport) return std::unexpected(transport.error());
  return std::unique_ptr<Client>(new ClientImpl(std::move(*transport)));
}

}  // namespace millrace::kube
