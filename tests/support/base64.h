// RFC 4648 base64 encoding (standard alphabet, '=' padding) for building
// HTTP basic auth headers in tests; the server side decodes with its own
// HttpServer::checkBasicAuth.
#pragma once

#include <string>

namespace mqttlive::test {

std::string base64(const std::string& in);

}  // namespace mqttlive::test
