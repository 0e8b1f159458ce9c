//! CEL conditions of attribute-based rules (the `cel` crate): compiled and checked when a rule is
//! written, evaluated against `subject`, `object` and `request` when a decision needs them. An
//! evaluation that fails, or yields anything but a boolean, counts as false (deny).

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, ExecutionError, Program, Value};
use serde_json::json;

use crate::error::{Error, Result};

/// The standard environment, built once: a context per evaluation only borrows it.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Longest condition accepted.
const MAX_LEN: usize = 4096;

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("INVALID_CONDITION", "condition", message)
}

/// Parses a condition and tries it on a sample subject and object: an unknown variable or
/// function, or a non-boolean result, is refused now rather than silently denying later.
pub fn compile(source: &str) -> Result<Program> {
    let sample_subject = json!({"id": "", "kind": "user", "roles": [], "groups": [], "organization_id": "",
                                "org_role": "", "properties": {}});
    let sample_object = json!({"type": "", "id": "", "attributes": {}});
    compile_over(source, &[("subject", &sample_subject), ("object", &sample_object), ("request", &json!({}))])
}

/// Parses a condition over the named variables (the loyalty rules use `event`, `user`, `tier`)
/// and tries it on their sample values, refusing unknown variables and non-boolean results.
pub fn compile_over(source: &str, samples: &[(&str, &serde_json::Value)]) -> Result<Program> {
    if source.trim().is_empty() || source.len() > MAX_LEN {
        return Err(invalid(format!("the condition must be 1 to {MAX_LEN} bytes")));
    }
    let program = Program::compile(source).map_err(|e| invalid(format!("the condition does not parse: {e}")))?;
    match execute(&program, samples) {
        Ok(Value::Bool(_)) => Ok(program),
        Ok(other) => Err(invalid(format!("the condition yields {:?}, not a boolean", other.type_of()))),
        Err(ExecutionError::UndeclaredReference(name)) => {
            let names: Vec<&str> = samples.iter().map(|(n, _)| *n).collect();
            Err(invalid(format!("the condition names `{name}`; only {} exist", names.join(", "))))
        }
        Err(ExecutionError::FunctionError { function, .. }) if function.is_empty() => Err(invalid("unknown function")),
        // Missing attributes in the empty samples (`object.attributes.type`) are fine: real values
        // carry them.
        Err(_) => Ok(program),
    }
}

fn execute(program: &Program, variables: &[(&str, &serde_json::Value)]) -> std::result::Result<Value, ExecutionError> {
    let mut context = Context::with_env(ENV.clone());
    for (name, value) in variables {
        context.add_variable(*name, *value).map_err(|e| ExecutionError::function_error("bind", e))?;
    }
    program.execute(&context)
}

fn run(
    program: &Program,
    subject: &serde_json::Value,
    object: &serde_json::Value,
    request: &serde_json::Value,
) -> std::result::Result<Value, ExecutionError> {
    execute(program, &[("subject", subject), ("object", object), ("request", request)])
}

/// The condition's value over the variables, or why it could not be computed (a run-time error,
/// or a result that is not a boolean).
pub fn evaluate(program: &Program, variables: &[(&str, &serde_json::Value)]) -> std::result::Result<bool, String> {
    match execute(program, variables) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("the condition yields {:?}, not a boolean", other.type_of())),
        Err(err) => Err(err.to_string()),
    }
}

/// Whether the condition holds; any failure is false.
pub fn holds(
    program: &Program,
    subject: &serde_json::Value,
    object: &serde_json::Value,
    request: &serde_json::Value,
) -> bool {
    match run(program, subject, object, request) {
        Ok(Value::Bool(b)) => b,
        Ok(_) => false,
        Err(err) => {
            tracing::debug!(error = %err, "rule condition failed; counted as false");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_evaluates() {
        let p = compile(r#"object.attributes.type == "external" && "editor" in subject.roles"#).unwrap();
        let subject = json!({"roles": ["editor"]});
        assert!(holds(&p, &subject, &json!({"attributes": {"type": "external"}}), &json!({})));
        assert!(!holds(&p, &subject, &json!({"attributes": {"type": "internal"}}), &json!({})));
        // A missing attribute is an evaluation error: denied.
        assert!(!holds(&p, &subject, &json!({"attributes": {}}), &json!({})));
    }

    #[test]
    fn refuses_bad_conditions() {
        for bad in ["", "object.type ==", "1 + 2", "\"x\"", "user.id == 'a'", &"a".repeat(5000)] {
            let err = compile(bad).err().unwrap_or_else(|| panic!("{bad} compiled"));
            assert!(matches!(err, Error::InvalidArgument { reason: "INVALID_CONDITION", .. }), "{bad}");
        }
        assert!(compile("subject.roles.exists(r, r == 'admin')").is_ok());
        assert!(compile("request.ip == '10.0.0.1'").is_ok());
    }
}
