//! End-to-end tests of the public API: parse then render, with a context,
//! for every function, pipelines, trim markers, blocks and errors.

#![allow(clippy::unwrap_used)] // a failing test should panic loudly

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn render_with(src: &str, ctx: &Context<'_>) -> Result<String, InterpError> {
    parse(src)?.render(ctx)
}

fn render(src: &str) -> String {
    render_with(src, &Context::minimal()).unwrap()
}

/// (offset, message) of the error parsing or rendering `src`.
fn fail_with(src: &str, ctx: &Context<'_>) -> (usize, String) {
    let e = render_with(src, ctx).unwrap_err();
    (e.offset, e.to_string())
}

fn fail(src: &str) -> (usize, String) {
    fail_with(src, &Context::minimal())
}

#[test]
fn text_comments_and_trim() {
    assert_eq!(render("plain text"), "plain text");
    assert_eq!(render("a {{/* note */}}b"), "a b");
    assert_eq!(render("a  {{- /* note */ -}}  b"), "ab");
    assert_eq!(render("x\n  {{- `y` -}}\n  z"), "xyz");
    assert_eq!(render("{{ 3 }} {{- 4 }}"), "34");
    assert_eq!(render("{{ 3 -}} \n {{ 4 }}"), "34");
    assert_eq!(render("{{-3}}"), "-3");
}

#[test]
fn literals_and_fields() {
    let data = map(&[("HTTPIP", "10.0.2.2"), ("HTTPPort", "8080")]);
    let ctx = Context {
        data: &data,
        ..Context::minimal()
    };
    assert_eq!(
        render_with("http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg", &ctx).unwrap(),
        "http://10.0.2.2:8080/preseed.cfg"
    );
    assert_eq!(
        render("{{ \"a\\tb\" }}|{{ `raw\\n` }}|{{ 42 }}|{{ true }}|{{ 'x' }}"),
        "a\tb|raw\\n|42|true|120"
    );
    assert_eq!(
        render_with("{{ . }}", &ctx).unwrap(),
        "map[HTTPIP:10.0.2.2 HTTPPort:8080]"
    );
    assert_eq!(
        fail_with("boot {{ .HTTPIp }}", &ctx),
        (
            8,
            "field `.HTTPIp` is not available here (did you mean `.HTTPIP`?)".into()
        )
    );
    assert_eq!(
        fail_with("{{ .HTTPIP.Port }}", &ctx),
        (10, "cannot read field `.Port` of a string".into())
    );
    assert_eq!(fail("{{ (lower `a`).X }}").0, 14);
}

#[test]
fn pipelines_put_the_value_last() {
    assert_eq!(render("{{ `Hello World` | lower }}"), "hello world");
    assert_eq!(
        render("{{ timestamp | clean_resource_name }}"),
        "1136214245"
    );
    assert_eq!(
        render("{{ isotime | clean_resource_name }}"),
        "2006-01-02t15-04-05z"
    );
    assert_eq!(render("{{ `a.b.c` | replace `.` `-` 1 }}"), "a-b.c");
    assert_eq!(render("{{ `a.b.c` | replace_all `.` `-` }}"), "a-b-c");
    assert_eq!(render("{{ `x` | printf `%s-%s` `y` }}"), "y-x");
    assert_eq!(render("{{ lower (upper `MiXed`) | upper }}"), "MIXED");
}

#[test]
fn user_variables() {
    let vars = map(&[("project_id", "kiln-123"), ("zone", "eu")]);
    let ctx = Context {
        user_vars: &vars,
        ..Context::minimal()
    };
    assert_eq!(
        render_with("{{user `project_id`}}-{{ user \"zone\" }}", &ctx).unwrap(),
        "kiln-123-eu"
    );
    // Outside the variables, as in Packer, an unknown one renders empty
    // (validation warns about it).
    assert_eq!(
        render_with("id: {{ user `projet_id` }}", &ctx).unwrap(),
        "id: "
    );
    // Among the variables (where env is allowed) it is an error.
    let lookup = |_: &str| None;
    let in_variables = Context {
        env: Some(&lookup),
        ..ctx
    };
    assert_eq!(
        fail_with("id: {{ user `projet_id` }}", &in_variables),
        (
            7,
            "variable `projet_id` is not declared in `variables` (did you mean `project_id`?)"
                .into()
        )
    );
    assert_eq!(
        fail_with("{{ user 3 }}", &ctx).1,
        "argument 1 of `user` must be a string, but is an integer"
    );
}

#[test]
fn env_only_where_allowed() {
    let lookup = |name: &str| (name == "HOME").then(|| "/home/k".to_string());
    let ctx = Context {
        env: Some(&lookup),
        ..Context::minimal()
    };
    assert_eq!(
        render_with("{{ env `HOME` }}|{{ env `UNSET` }}", &ctx).unwrap(),
        "/home/k|"
    );
    assert_eq!(
        fail("x {{ env `HOME` }}"),
        (5, "env can only be used in variable defaults".into())
    );
}

#[test]
fn time_functions_use_the_init_time() {
    assert_eq!(render("{{ timestamp }}"), "1136214245");
    assert_eq!(render("{{ isotime }}"), "2006-01-02T15:04:05Z");
    assert_eq!(render("{{ isotime \"2006-01-02\" }}"), "2006-01-02");
    assert_eq!(
        render("{{ isotime `Mon Jan _2 15:04:05 MST 2006` }}"),
        "Mon Jan  2 15:04:05 UTC 2006"
    );
    let later = Context {
        init_time: UNIX_EPOCH + Duration::new(1_709_165_229, 5_000_000),
        ..Context::minimal()
    };
    assert_eq!(
        render_with("{{isotime `20060102-150405.000`}}", &later).unwrap(),
        "20240229-000709.005"
    );
    assert_eq!(
        render_with("{{ timestamp }}", &later).unwrap(),
        "1709165229"
    );
}

#[test]
fn uuid_is_fresh_v4_each_call() {
    let out = render("{{ uuid }} {{ uuid }}");
    let (a, b) = out.split_once(' ').unwrap();
    assert_ne!(a, b);
    for id in [a, b] {
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "version 4: {id}");
    }
}

#[test]
fn paths_build_and_version() {
    let ctx = Context {
        template_dir: Path::new("/src/tpl"),
        pwd: Path::new("/work"),
        build_name: Some("qemu"),
        build_type: Some("qemu"),
        packer_version: "1.6.6",
        ..Context::minimal()
    };
    assert_eq!(
        render_with(
            "{{template_dir}} {{pwd}} {{build_name}}/{{build_type}} {{packer_version}}",
            &ctx
        )
        .unwrap(),
        "/src/tpl /work qemu/qemu 1.6.6"
    );
    assert_eq!(
        fail("{{ build_name }}"),
        (3, "`build_name` is not available here".into())
    );
    assert_eq!(
        fail("{{ build_type }}").1,
        "`build_type` is not available here"
    );
    let no_dir = Context {
        template_dir: Path::new(""),
        ..Context::minimal()
    };
    assert!(render_with("{{ template_dir }}", &no_dir).is_err());
}

#[test]
fn build_values() {
    let values = map(&[("ID", "vm-1"), ("Host", "127.0.0.1")]);
    let ctx = Context {
        build_values: Some(&values),
        ..Context::minimal()
    };
    assert_eq!(
        render_with("{{ build `ID` }}@{{ build `Host` }}", &ctx).unwrap(),
        "vm-1@127.0.0.1"
    );
    assert_eq!(
        fail_with("{{ build `Hots` }}", &ctx).1,
        "unknown build value `Hots` (did you mean `Host`?)"
    );
    assert_eq!(
        fail("{{ build `ID` }}").1,
        "`build` values are only available in provisioners and post-processors"
    );
}

#[test]
fn string_functions() {
    assert_eq!(render("{{ lower `ÀB` }} {{ upper `àb` }}"), "àb ÀB");
    assert_eq!(render("{{ split `a,b,c` `,` 2 }}"), "c");
    assert_eq!(fail("{{ split `a,b` `,` 5 }}").0, 3);
    assert_eq!(
        fail("{{ split `a,b` `,` `1` }}").1,
        "argument 3 of `split` must be an integer, but is a string"
    );
    assert_eq!(render("{{ replace `a` `b` -1 `aaa` }}"), "bbb");
    assert_eq!(render("{{ replace_all `a` `b` `aaa` }}"), "bbb");
    assert_eq!(
        render("{{ clean_resource_name `My Build_2017.10` }}"),
        "my-build-2017-10"
    );
}

#[test]
fn go_builtins() {
    assert_eq!(
        render(
            "{{ eq 1 1 }} {{ ne `a` `a` }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge `b` `a` }}"
        ),
        "true false true true false true"
    );
    assert_eq!(
        render("{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 `` `x` }} {{ or 0 `` }} {{ not 0 }}"),
        "0 2 x  true"
    );
    assert_eq!(render("{{ len `abc` }} {{ index `abc` 0 }}"), "3 97");
    assert_eq!(
        render("{{ print 1 2 `a` }}|{{ println `a` 1 }}|{{ printf `%d-%q` 5 `s` }}"),
        "1 2a|a 1\n|5-\"s\""
    );
    // `and` stops before evaluating what would fail.
    assert_eq!(render("{{ and false (user `undeclared`) }}"), "false");
    assert_eq!(render("{{ or true (env `X`) }}"), "true");
    assert_eq!(render("{{ `x` | and true }}"), "x");
    assert_eq!(
        fail("{{ eq 1 `1` }}"),
        (3, "cannot compare an integer with a string".into())
    );
}

#[test]
fn if_else_with() {
    let data = map(&[("Name", "web"), ("Empty", "")]);
    let ctx = Context {
        data: &data,
        ..Context::minimal()
    };
    let r = |src| render_with(src, &ctx).unwrap();
    assert_eq!(r("{{if .Name}}yes{{else}}no{{end}}"), "yes");
    assert_eq!(r("{{if .Empty}}yes{{else}}no{{end}}"), "no");
    assert_eq!(
        r("{{if eq .Name `db`}}db{{else if eq .Name `web`}}web{{else}}other{{end}}"),
        "web"
    );
    assert_eq!(
        r("{{with .Name}}[{{.}}]{{end}}{{with .Empty}}x{{else}}none{{end}}"),
        "[web]none"
    );
    assert_eq!(r("{{ if .Name -}}  \n  trimmed  {{- end }}"), "trimmed");
    assert_eq!(
        fail_with("{{with .Name}}{{.Other}}{{end}}", &ctx).1,
        "cannot read field `.Other` of a string"
    );
    assert_eq!(
        r("{{if false}}{{ user `nope` }}{{end}}"),
        "",
        "untaken branches are not evaluated"
    );
}

#[test]
fn unknown_and_unsupported_functions() {
    assert_eq!(
        fail("{{ lowr `A` }}"),
        (3, "unknown function `lowr` (did you mean `lower`?)".into())
    );
    assert_eq!(
        fail("{{ sed `s/a/b/` `abc` }}").1,
        "function `sed` is not supported by kiln (Packer deprecated it too); use `replace` or `replace_all`"
    );
    assert_eq!(fail("a {{ vault `/secret` `key` }}").0, 5);
    assert!(
        fail("{{ consul_key `k` }}")
            .1
            .contains("not supported by kiln")
    );
    assert!(
        fail("{{ aws_secretsmanager `k` }}")
            .1
            .contains("not supported by kiln")
    );
}

#[test]
fn syntax_errors_point_at_the_problem() {
    assert_eq!(
        fail("abc {{ user `x`"),
        (4, "unterminated action: expected `}}`".into())
    );
    assert_eq!(
        fail("{{ user `x` }"),
        (12, "unexpected character `}` in action".into())
    );
    assert_eq!(
        fail("{{ user ` }}"),
        (8, "unterminated string literal".into())
    );
    assert_eq!(fail("{{ 1.5 }}").0, 3);
    assert_eq!(
        fail("{{ user \"\\z\" }}"),
        (9, "invalid escape sequence `\\z` in literal".into())
    );
}

#[test]
fn introspection() {
    let t = parse(
        "{{ user `a` | lower }} {{ .HTTPIP }}:{{ .HTTPPort }} {{ if .X.Y }}{{ isotime }}{{ end }}",
    )
    .unwrap();
    assert_eq!(
        t.functions(),
        vec![
            ("user".to_string(), 3),
            ("lower".to_string(), 14),
            ("isotime".to_string(), 69)
        ]
    );
    assert_eq!(
        t.data_fields(),
        vec![
            ("HTTPIP".to_string(), 26),
            ("HTTPPort".to_string(), 40),
            ("X".to_string(), 59)
        ]
    );
    assert!(!t.is_literal());
    assert_eq!(t.source().len(), 88);
    let lit = parse("just text {{/* and a comment */}}").unwrap();
    assert!(lit.is_literal());
    assert_eq!(lit.render(&Context::minimal()).unwrap(), "just text ");
}

#[test]
fn output_size_is_bounded() {
    let src = "{{ $s := 1 }}";
    assert!(parse(src).is_err());
    let grow = "{{ replace_all `` (replace_all `` (replace_all `` `xxxxxxxxxxxxxxxxxxxx` `xxxxxxxxxxxxxxxxxxxx`) (replace_all `` `xxxxxxxxxxxxxxxxxxxx` `xxxxxxxxxxxxxxxxxxxx`)) (replace_all `` (replace_all `` `xxxxxxxxxxxxxxxxxxxx` `xxxxxxxxxxxxxxxxxxxx`) (replace_all `` `xxxxxxxxxxxxxxxxxxxx` `xxxxxxxxxxxxxxxxxxxx`)) }}";
    assert_eq!(
        fail(grow).1,
        "the result would be longer than 1048576 bytes"
    );
}

#[test]
fn variables_keep_build_time_fields_for_the_place_they_are_used() {
    let vars = map(&[("os", "debian")]);
    let ctx = Context {
        user_vars: &vars,
        ..Context::minimal()
    };
    let kept = parse("out/{{user `os`}}-{{.Provider}}-{{ .Name | lower }}.box")
        .unwrap()
        .render_keeping_fields(&ctx)
        .unwrap();
    assert_eq!(kept, "out/debian-{{ .Provider }}-{{ .Name | lower }}.box");
    assert!(build_time_value(&kept).is_some());
    assert!(build_time_value("no actions").is_none());
    assert!(build_time_value("{{user `x`}} {{ .A }}").is_none());

    // Where it is used, the value is rendered with that place's fields.
    let vars = map(&[("box_output", &kept)]);
    let data = map(&[("Provider", "libvirt"), ("Name", "Tiny")]);
    let ctx = Context {
        user_vars: &vars,
        data: &data,
        ..Context::minimal()
    };
    assert_eq!(
        render_with("{{user `box_output`}}", &ctx).unwrap(),
        "out/debian-libvirt-tiny.box"
    );
    // Where the field is unknown, the error names the variable.
    let ctx = Context {
        user_vars: &vars,
        ..Context::minimal()
    };
    assert_eq!(
        fail_with("x {{user `box_output`}}", &ctx),
        (
            4,
            "variable `box_output`: field `.Provider` is not available here".into()
        )
    );
    let (usages, _): (Vec<String>, Vec<usize>) = parse("{{user `a`}}{{ user \"b\" | lower }}")
        .unwrap()
        .user_variables()
        .into_iter()
        .unzip();
    assert_eq!(usages, ["a", "b"]);
}
