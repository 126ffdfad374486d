#pragma once
// One uniform way to turn JSON into a struct and back.
//
//   struct CreateUser { std::string email; std::string password; std::optional<std::string> name; };
//   BOOST_DESCRIBE_STRUCT(CreateUser, (), (email, password, name))
//   void validate(const CreateUser& u, mercado::json::Validator& v) {   // optional, found by ADL
//     v.check(is_email(u.email), "email", "must be an email address");
//   }
//   Result<CreateUser> in = mercado::json::decode<CreateUser>(body);
//
// decode() reports *every* problem at once: a syntax error, or each missing, null,
// mistyped or invalid field with its path ("items[0].quantity"), as an invalid_argument
// Error whose `fields` list them. Members of type std::optional may be absent or null;
// all others are required. Unknown members are ignored (forward compatibility).
// Integers must be JSON integers in range (money is integer minor units); 1.0 is not an int.
//
// Supported member types: bool, integral types, double, std::string, std::optional<T>,
// std::vector<T>, std::map<std::string, T>, boost::json::value, and described structs.

#include <boost/describe.hpp>
#include <boost/json.hpp>
#include <boost/mp11/algorithm.hpp>

#include <charconv>
#include <concepts>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <mercado/core/error.hpp>

namespace mercado::json {

namespace bj = boost::json;

// Collects field errors; passed to validate(). Field names are relative to the struct.
class Validator {
 public:
  // Records `message` for `field` unless `ok`, or unless `field` has an error already: one
  // message per field, the first rule it breaks.
  void check(bool ok, std::string field, std::string message) {
    if (!ok) fail(std::move(field), std::move(message));
  }
  void fail(std::string field, std::string message) {
    if (failed_.insert(field).second) errors_.push_back({std::move(field), std::move(message)});
  }
  bool has(const std::string& field) const { return failed_.contains(field); }
  bool ok() const noexcept { return errors_.empty(); }
  std::vector<FieldError>& errors() noexcept { return errors_; }

 private:
  std::vector<FieldError> errors_;
  std::unordered_set<std::string> failed_;  // the fields in errors_ (a body may have thousands)
};

namespace detail {

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_string_map : std::false_type {};
template <class T, class C, class A> struct is_string_map<std::map<std::string, T, C, A>> : std::true_type {};

template <class T>
concept Described = boost::describe::has_describe_members<T>::value;

template <class T>
concept HasValidate = requires(const T& t, Validator& v) { validate(t, v); };

inline std::string join(const std::string& base, std::string_view member) {
  return base.empty() ? std::string(member) : base + "." + std::string(member);
}

template <class T>
void decode_into(const bj::value& v, T& out, const std::string& path, std::vector<FieldError>& errors);

inline std::string kind_name(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::null: return "null";
    case bj::kind::bool_: return "a boolean";
    case bj::kind::int64:
    case bj::kind::uint64: return "an integer";
    case bj::kind::double_: return "a number";
    case bj::kind::string: return "a string";
    case bj::kind::array: return "an array";
    case bj::kind::object: return "an object";
  }
  return "a value";
}

inline void type_error(const std::string& path, const char* expected, const bj::value& v,
                       std::vector<FieldError>& errors) {
  errors.push_back({path.empty() ? std::string("$") : path,
                    std::string("must be ") + expected + ", not " + kind_name(v)});
}

template <class T>
void decode_into(const bj::value& v, T& out, const std::string& path, std::vector<FieldError>& errors) {
  if constexpr (std::is_same_v<T, bj::value>) {
    out = v;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (v.is_bool()) out = v.get_bool(); else type_error(path, "a boolean", v, errors);
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_int64()) {
      auto x = v.get_int64();
      if constexpr (std::is_unsigned_v<T>) {
        if (x < 0) { errors.push_back({path, "must not be negative"}); return; }
        if (static_cast<std::uint64_t>(x) > std::numeric_limits<T>::max()) { errors.push_back({path, "is out of range"}); return; }
      } else {
        if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) { errors.push_back({path, "is out of range"}); return; }
      }
      out = static_cast<T>(x);
    } else if (v.is_uint64()) {
      auto x = v.get_uint64();
      if (x > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) { errors.push_back({path, "is out of range"}); return; }
      out = static_cast<T>(x);
    } else {
      type_error(path, "an integer", v, errors);
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) out = static_cast<T>(v.to_number<double>()); else type_error(path, "a number", v, errors);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) out.assign(v.get_string().data(), v.get_string().size()); else type_error(path, "a string", v, errors);
  } else if constexpr (is_optional<T>::value) {
    if (v.is_null()) { out.reset(); return; }
    typename T::value_type inner{};
    std::size_t before = errors.size();
    decode_into(v, inner, path, errors);
    if (errors.size() == before) out = std::move(inner);
  } else if constexpr (is_vector<T>::value) {
    if (!v.is_array()) { type_error(path, "an array", v, errors); return; }
    const auto& arr = v.get_array();
    out.clear();
    out.reserve(arr.size());
    for (std::size_t i = 0; i < arr.size(); ++i) {
      typename T::value_type item{};
      decode_into(arr[i], item, path + "[" + std::to_string(i) + "]", errors);
      out.push_back(std::move(item));
    }
  } else if constexpr (is_string_map<T>::value) {
    if (!v.is_object()) { type_error(path, "an object", v, errors); return; }
    out.clear();
    for (const auto& kv : v.get_object()) {
      typename T::mapped_type item{};
      decode_into(kv.value(), item, join(path, kv.key()), errors);
      out.emplace(std::string(kv.key()), std::move(item));
    }
  } else if constexpr (Described<T>) {
    if (!v.is_object()) { type_error(path, "an object", v, errors); return; }
    const std::size_t first = errors.size();  // this struct's decoding errors start here
    const auto& obj = v.get_object();
    boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto D) {
      using M = std::remove_cvref_t<decltype(out.*D.pointer)>;
      std::string member_path = join(path, D.name);
      auto it = obj.find(D.name);
      if (it == obj.end()) {
        if constexpr (!is_optional<M>::value) errors.push_back({member_path, "is required"});
        return;
      }
      if (it->value().is_null() && !is_optional<M>::value && !std::is_same_v<M, bj::value>) {
        errors.push_back({member_path, "must not be null"});
        return;
      }
      decode_into(it->value(), out.*D.pointer, member_path, errors);
    });
    if constexpr (HasValidate<T>) {
      // Field names in validate() are relative to the struct; nested ones get the path.
      Validator val;
      validate(static_cast<const T&>(out), val);
      if (!val.errors().empty()) {
        // A field that could not be decoded (missing, null, the wrong type) keeps that one
        // error: its rules ran on a default value.
        std::unordered_set<std::string> decoded_badly;
        for (std::size_t i = first; i < errors.size(); ++i) decoded_badly.insert(errors[i].field);
        for (auto& e : val.errors()) {
          e.field = join(path, e.field);
          if (!decoded_badly.contains(e.field)) errors.push_back(std::move(e));
        }
      }
    }
  } else {
    static_assert(sizeof(T) == 0, "mercado::json cannot decode this member type");
  }
}

template <class T>
bj::value encode_value(const T& in) {
  if constexpr (std::is_same_v<T, bj::value> || std::is_same_v<T, bj::object> || std::is_same_v<T, bj::array>) {
    return bj::value(in);
  } else if constexpr (std::is_same_v<T, bool> || std::is_arithmetic_v<T>) {
    return bj::value(in);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return bj::value(bj::string_view(in.data(), in.size()));
  } else if constexpr (is_optional<T>::value) {
    return in ? encode_value(*in) : bj::value(nullptr);
  } else if constexpr (is_vector<T>::value) {
    bj::array a;
    a.reserve(in.size());
    for (const auto& x : in) a.push_back(encode_value(x));
    return a;
  } else if constexpr (is_string_map<T>::value) {
    bj::object o;
    for (const auto& [k, x] : in) o[k] = encode_value(x);
    return o;
  } else if constexpr (Described<T>) {
    bj::object o;
    boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto D) {
      using M = std::remove_cvref_t<decltype(in.*D.pointer)>;
      if constexpr (is_optional<M>::value) {
        if (!(in.*D.pointer)) return;  // absent optionals are omitted
      }
      o[D.name] = encode_value(in.*D.pointer);
    });
    return o;
  } else {
    static_assert(sizeof(T) == 0, "mercado::json cannot encode this member type");
  }
}

// Appends `s` as a JSON string (with quotes), escaping as RFC 8259 requires.
void append_string(std::string& out, std::string_view s);
void append_double(std::string& out, double d);
// Appends the serialized value, written by boost::json::serializer straight into `out`.
void append_serialized(std::string& out, const bj::value& v);
void append_serialized(std::string& out, const bj::object& v);
void append_serialized(std::string& out, const bj::array& v);

// Writes JSON text straight from the value, without building a boost::json DOM first
// (responses are written on every request: this is the hot path of encoding).
template <class T>
void write_value(std::string& out, const T& in) {
  if constexpr (std::is_same_v<T, bj::value> || std::is_same_v<T, bj::object> || std::is_same_v<T, bj::array>) {
    append_serialized(out, in);
  } else if constexpr (std::is_same_v<T, bool>) {
    out += in ? "true" : "false";
  } else if constexpr (std::is_integral_v<T>) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, in);
    out.append(buf, r.ptr);
  } else if constexpr (std::is_floating_point_v<T>) {
    append_double(out, static_cast<double>(in));
  } else if constexpr (std::is_same_v<T, std::string>) {
    append_string(out, in);
  } else if constexpr (is_optional<T>::value) {
    if (in) {
      write_value(out, *in);
    } else {
      out += "null";
    }
  } else if constexpr (is_vector<T>::value) {
    out += '[';
    bool first = true;
    for (const auto& x : in) {
      if (!first) out += ',';
      first = false;
      write_value(out, x);
    }
    out += ']';
  } else if constexpr (is_string_map<T>::value) {
    out += '{';
    bool first = true;
    for (const auto& [k, x] : in) {
      if (!first) out += ',';
      first = false;
      append_string(out, k);
      out += ':';
      write_value(out, x);
    }
    out += '}';
  } else if constexpr (Described<T>) {
    out += '{';
    bool first = true;
    boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto D) {
      using M = std::remove_cvref_t<decltype(in.*D.pointer)>;
      if constexpr (is_optional<M>::value) {
        if (!(in.*D.pointer)) return;  // absent optionals are omitted, as in encode()
      }
      if (!first) out += ',';
      first = false;
      append_string(out, D.name);
      out += ':';
      write_value(out, in.*D.pointer);
    });
    out += '}';
  } else {
    static_assert(sizeof(T) == 0, "mercado::json cannot encode this member type");
  }
}

}  // namespace detail

// Parses JSON text; invalid_argument with the position on a syntax error.
Result<bj::value> parse(std::string_view text);

// Decodes (and validates) an already parsed value into T.
template <class T>
Result<T> decode_value(const bj::value& v) {
  T out{};
  std::vector<FieldError> errors;
  detail::decode_into(v, out, "", errors);
  if (!errors.empty()) {
    Error e(Errc::invalid_argument, errors.size() == 1 ? "1 invalid field: " + errors[0].field + " " + errors[0].message
                                                      : std::to_string(errors.size()) + " invalid fields");
    e.type = "validation";
    e.fields = std::move(errors);
    return fail(std::move(e));
  }
  return out;
}

// Parses and decodes JSON text into T.
template <class T>
Result<T> decode(std::string_view text) {
  auto v = parse(text);
  if (!v) return fail(std::move(v.error()));
  return decode_value<T>(*v);
}

template <class T>
bj::value encode(const T& in) {
  return detail::encode_value(in);
}

// JSON text of `in` (the same document as serialize(encode(in)), written directly).
template <class T>
std::string to_string(const T& in) {
  std::string out;
  out.reserve(128);
  detail::write_value(out, in);
  return out;
}

}  // namespace mercado::json
