//! The route table: every `google.api.http` binding (and its `additional_bindings`) of every
//! method in the descriptor pool, built once at start. Nothing here knows about a particular
//! service, so new services only need their annotations.

use std::collections::HashMap;

use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value};

use super::error::RestError;
use super::template::{Bindings, Template};

/// Where the HTTP body goes in the request message.
#[derive(Debug, Clone)]
pub enum BodyRule {
    /// No `body`: the request body must be empty.
    None,
    /// `body: "*"`: the body is the whole request message.
    Whole,
    /// `body: "field"`: the body is that field.
    Field(Vec<FieldDescriptor>),
}

#[derive(Debug)]
pub struct Route {
    pub http_method: Method,
    pub template: Template,
    pub method: MethodDescriptor,
    pub body: BodyRule,
    /// `response_body: "field"`: only that (message) field of the reply is returned.
    pub response_field: Option<FieldDescriptor>,
    /// `/<package>.<Service>/<Method>`, the gRPC path the route calls.
    pub grpc_uri: http::Uri,
}

pub enum Lookup<'a> {
    Found(&'a Route, Bindings),
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Reads the bindings of every method in `pool`.
    ///
    /// # Panics
    /// On an invalid template, a binding naming a missing field, or two bindings with the same
    /// HTTP method and template shape: these are contract bugs that must stop the server at start
    /// rather than route requests unpredictably.
    pub fn from_pool(pool: &DescriptorPool) -> RouteTable {
        let Some(http_ext) = pool.get_extension_by_name("google.api.http") else {
            return RouteTable::default();
        };
        let mut routes = Vec::new();
        let mut seen: HashMap<(Method, String), String> = HashMap::new();
        for service in pool.services() {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&http_ext) {
                    continue;
                }
                let rule = options.get_extension(&http_ext);
                let Some(rule) = rule.as_message() else { continue };
                let mut rules = vec![rule.clone()];
                if let Some(extra) = rule.get_field_by_name("additional_bindings").and_then(|v| v.as_list().map(<[Value]>::to_vec)) {
                    rules.extend(extra.iter().filter_map(|v| v.as_message().cloned()));
                }
                for rule in &rules {
                    let route = route_for(&method, rule).unwrap_or_else(|e| panic!("google.api.http of {}: {e}", method.full_name()));
                    let key = (route.http_method.clone(), route.template.shape());
                    if let Some(other) = seen.insert(key.clone(), method.full_name().to_owned()) {
                        panic!(
                            "duplicate REST binding {} {}: bound by both {other} and {}",
                            key.0,
                            key.1,
                            method.full_name()
                        );
                    }
                    routes.push(route);
                }
            }
        }
        RouteTable { routes }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Finds the most specific route for `method path`. A path bound only under other HTTP
    /// methods is a 405, not a 404, so clients learn the resource exists.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let mut best: Option<(&Route, Bindings)> = None;
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(bindings) = route.template.matches(path) else { continue };
            if route.http_method != method {
                if !allowed.contains(&route.http_method) {
                    allowed.push(route.http_method.clone());
                }
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| route.template.specificity() > b.template.specificity()) {
                best = Some((route, bindings));
            }
        }
        match best {
            Some((route, bindings)) => Lookup::Found(route, bindings),
            None if !allowed.is_empty() => Lookup::MethodNotAllowed(allowed),
            None => Lookup::NotFound,
        }
    }
}

fn route_for(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Route, String> {
    let (http_method, path) = pattern(rule)?;
    let template = Template::parse(&path).map_err(|e| format!("template `{path}`: {e}"))?;
    let input = method.input();
    for var in &template.variables {
        resolve_path(&input, &var.field_path).map_err(|e| format!("template `{path}`: {}", e.message))?;
    }
    let body = match string_field(rule, "body").as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        field => {
            let names: Vec<String> = field.split('.').map(str::to_owned).collect();
            BodyRule::Field(resolve_path(&input, &names).map_err(|e| format!("body: {}", e.message))?)
        }
    };
    let response_field = match string_field(rule, "response_body").as_str() {
        "" => None,
        name => {
            let field = method.output().get_field_by_name(name).ok_or_else(|| format!("response_body `{name}` is not a field"))?;
            if field.is_list() || field.is_map() || !matches!(field.kind(), Kind::Message(_)) {
                return Err(format!("response_body `{name}` must be a singular message field"));
            }
            Some(field)
        }
    };
    let grpc_uri = format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .map_err(|e| format!("gRPC path: {e}"))?;
    Ok(Route { http_method, template, method: method.clone(), body, response_field, grpc_uri })
}

/// The HTTP method and path template of one `HttpRule` (the `pattern` oneof).
fn pattern(rule: &DynamicMessage) -> Result<(Method, String), String> {
    for (name, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(name) {
            return Ok((method, string_field(rule, name)));
        }
    }
    if rule.has_field_by_name("custom") {
        let custom = rule.get_field_by_name("custom").and_then(|v| v.as_message().cloned()).unwrap_or_else(|| rule.clone());
        let method = Method::from_bytes(string_field(&custom, "kind").as_bytes()).map_err(|e| format!("custom kind: {e}"))?;
        return Ok((method, string_field(&custom, "path")));
    }
    Err("no HTTP method set".into())
}

fn string_field(msg: &DynamicMessage, name: &str) -> String {
    msg.get_field_by_name(name).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Resolves a dotted field path (proto or JSON names) through singular message fields.
pub fn resolve_path<S: AsRef<str>>(desc: &MessageDescriptor, names: &[S]) -> Result<Vec<FieldDescriptor>, RestError> {
    let dotted = || names.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(".");
    let mut current = desc.clone();
    let mut fields = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let name = name.as_ref();
        let field = current
            .get_field_by_name(name)
            .or_else(|| current.get_field_by_json_name(name))
            .ok_or_else(|| RestError::unknown_field(&dotted()))?;
        if i + 1 < names.len() {
            match field.kind() {
                Kind::Message(m) if !field.is_list() && !field.is_map() => current = m,
                _ => return Err(RestError::invalid_argument(format!("`{}` is not a singular message field", field.name()))),
            }
        }
        fields.push(field);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::from_pool(&mgpass_proto::descriptor_pool())
    }

    fn found(t: &RouteTable, m: Method, path: &str) -> String {
        match t.lookup(&m, path) {
            Lookup::Found(r, _) => r.method.full_name().to_owned(),
            Lookup::MethodNotAllowed(a) => format!("405 {a:?}"),
            Lookup::NotFound => "404".into(),
        }
    }

    #[test]
    fn reads_every_annotated_method_including_additional_bindings() {
        let t = table();
        assert!(t.len() > 10, "only {} routes", t.len());
        assert_eq!(found(&t, Method::GET, "/v1/users/42"), "mgpass.identity.v1.UserService.GetUser");
        assert_eq!(found(&t, Method::POST, "/v1/users/42:suspend"), "mgpass.identity.v1.UserService.SuspendUser");
        assert_eq!(found(&t, Method::GET, "/.well-known/jwks.json"), "mgpass.identity.v1.AuthenticationService.GetJwks");
        assert_eq!(found(&t, Method::GET, "/v1/auth/jwks"), "mgpass.identity.v1.AuthenticationService.GetJwks");
        assert_eq!(found(&t, Method::GET, "/v1/nothing"), "404");
        assert!(found(&t, Method::PUT, "/v1/users").starts_with("405"));
    }

    #[test]
    fn bodies_and_grpc_paths() {
        let t = table();
        let Lookup::Found(r, b) = t.lookup(&Method::PATCH, "/v1/users/u1") else { panic!("no route") };
        assert!(matches!(&r.body, BodyRule::Field(f) if f[0].name() == "user"));
        assert_eq!(r.grpc_uri.path(), "/mgpass.identity.v1.UserService/UpdateUser");
        assert_eq!(b, vec![(vec!["user".to_owned(), "id".to_owned()], "u1".to_owned())]);
        let Lookup::Found(r, _) = t.lookup(&Method::GET, "/v1/users") else { panic!("no route") };
        assert!(matches!(r.body, BodyRule::None));
    }
}
