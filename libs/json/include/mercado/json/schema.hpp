#pragma once
// JSON Schema (draft 2020-12 subset, as OpenAPI 3.1/3.0 tools read it) for the types the
// codec decodes: objects from Boost.Describe'd structs (non-optional members are required),
// arrays, maps, strings, integers, numbers, booleans.

#include <boost/describe.hpp>
#include <boost/json.hpp>
#include <boost/mp11/algorithm.hpp>

#include <mercado/json/codec.hpp>

namespace mercado::json {

template <class T>
boost::json::value schema() {
  namespace bj = boost::json;
  if constexpr (std::is_same_v<T, bj::value>) {
    return bj::object{};
  } else if constexpr (std::is_same_v<T, bool>) {
    return bj::object{{"type", "boolean"}};
  } else if constexpr (std::is_integral_v<T>) {
    return bj::object{{"type", "integer"}, {"format", sizeof(T) > 4 ? "int64" : "int32"}};
  } else if constexpr (std::is_floating_point_v<T>) {
    return bj::object{{"type", "number"}};
  } else if constexpr (std::is_same_v<T, std::string>) {
    return bj::object{{"type", "string"}};
  } else if constexpr (detail::is_optional<T>::value) {
    return schema<typename T::value_type>();
  } else if constexpr (detail::is_vector<T>::value) {
    return bj::object{{"type", "array"}, {"items", schema<typename T::value_type>()}};
  } else if constexpr (detail::is_string_map<T>::value) {
    return bj::object{{"type", "object"}, {"additionalProperties", schema<typename T::mapped_type>()}};
  } else if constexpr (detail::Described<T>) {
    bj::object props;
    bj::array required;
    boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto D) {
      using M = std::remove_cvref_t<decltype(std::declval<T&>().*D.pointer)>;
      props[D.name] = schema<M>();
      if constexpr (!detail::is_optional<M>::value) required.push_back(bj::string(D.name));
    });
    bj::object o{{"type", "object"}, {"properties", std::move(props)}};
    if (!required.empty()) o["required"] = std::move(required);
    return o;
  } else {
    static_assert(sizeof(T) == 0, "no JSON schema for this type");
  }
}

}  // namespace mercado::json
