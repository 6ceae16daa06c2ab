/*
 * tests/unit/test_json.c
 *      core/json: string escaping and the top-level member scanner.
 */
#include "core/json.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char model[128];
    char stream[16];
    char usage[256];
    tg_json_field_t f[3];
} tg_scan_case_t;


static void
scan_case_init(tg_scan_case_t *t)
{
    memset(t, 0, sizeof(*t));
    t->f[0] = (tg_json_field_t){.name = "model",
                                .name_len = 5,
                                .buf = t->model,
                                .cap = sizeof(t->model) - 1};
    t->f[1] = (tg_json_field_t){.name = "stream",
                                .name_len = 6,
                                .buf = t->stream,
                                .cap = sizeof(t->stream) - 1};
    t->f[2] = (tg_json_field_t){.name = "usage",
                                .name_len = 5,
                                .buf = t->usage,
                                .cap = sizeof(t->usage) - 1};
}


/* Scan <doc> split into pieces of <step> bytes (0 = at once). */
static bool
scan(tg_scan_case_t *t, const char *doc, size_t step)
{
    tg_json_scan_t s;
    size_t len = strlen(doc), off = 0;
    bool ok = true;

    scan_case_init(t);
    tg_json_scan_init(&s, t->f, 3);
    if (step == 0) {
        step = len ? len : 1;
    }
    while (off < len) {
        size_t n = len - off < step ? len - off : step;

        ok = tg_json_scan_feed(&s, doc + off, n);
        off += n;
    }
    t->model[t->f[0].len] = '\0';
    t->stream[t->f[1].len] = '\0';
    t->usage[t->f[2].len] = '\0';
    return ok;
}


static void
test_captures_top_level_members(void)
{
    const char *doc =
        "{\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":"
        "\"say \\\"model\\\": no\",\"model\":\"nested\"}],"
        "\"model\" : \"claude-opus-4-5\", \"stream\":true,"
        "\"usage\":{\"input_tokens\":12,\"x\":[1,{\"y\":\"}\"}]}}";
    size_t step;

    for (step = 0; step <= strlen(doc); step++) {
        tg_scan_case_t t;

        CU_ASSERT_TRUE(scan(&t, doc, step));
        CU_ASSERT_STRING_EQUAL(t.model, "\"claude-opus-4-5\"");
        CU_ASSERT_STRING_EQUAL(t.stream, "true");
        CU_ASSERT_STRING_EQUAL(t.usage,
                               "{\"input_tokens\":12,\"x\":[1,{\"y\":\"}\"}]}");
        CU_ASSERT_TRUE(t.f[0].found && t.f[1].found && t.f[2].found);
    }
}


static void
test_ignores_members_of_nested_objects(void)
{
    tg_scan_case_t t;

    CU_ASSERT_TRUE(scan(&t, "{\"a\":{\"model\":\"x\"},\"b\":[\"model\"]}", 0));
    CU_ASSERT_FALSE(t.f[0].found);
}


static void
test_literal_values_end_at_delimiters(void)
{
    tg_scan_case_t t;

    CU_ASSERT_TRUE(scan(&t, "{\"stream\":false}", 0));
    CU_ASSERT_STRING_EQUAL(t.stream, "false");
    CU_ASSERT_TRUE(scan(&t, "{\"stream\" : null ,\"model\":\"m\"}", 1));
    CU_ASSERT_STRING_EQUAL(t.stream, "null");
    CU_ASSERT_STRING_EQUAL(t.model, "\"m\"");
}


static void
test_marks_a_value_longer_than_its_buffer_truncated(void)
{
    char doc[600];
    tg_scan_case_t t;

    snprintf(doc, sizeof(doc), "{\"model\":\"%0300d\"}", 7);
    CU_ASSERT_TRUE(scan(&t, doc, 7));
    CU_ASSERT_TRUE(t.f[0].truncated);
    CU_ASSERT_EQUAL(t.f[0].len, sizeof(t.model) - 1);
}


static void
test_refuses_documents_that_are_not_objects(void)
{
    tg_scan_case_t t;

    CU_ASSERT_FALSE(scan(&t, "[1,2]", 0));
    CU_ASSERT_FALSE(scan(&t, "\"model\"", 0));
    CU_ASSERT_FALSE(scan(&t, "{\"model\" \"x\"}", 0));
    CU_ASSERT_FALSE(t.f[0].found);
}


static void
test_an_escaped_member_name_never_matches(void)
{
    tg_scan_case_t t;

    CU_ASSERT_TRUE(scan(&t, "{\"mod\\u0065l\":\"x\"}", 0));
    CU_ASSERT_FALSE(t.f[0].found);
}


static void
test_escapes_control_quotes_and_invalid_utf8(void)
{
    char out[64];

    tg_json_escape(out, sizeof(out), "a\"b\\c\n\x01", 7);
    CU_ASSERT_STRING_EQUAL(out, "a\\\"b\\\\c\\n\\u0001");
    tg_json_escape(out, sizeof(out), "\xff\xc3\xa9", 3);
    CU_ASSERT_STRING_EQUAL(out, "\xef\xbf\xbd\xc3\xa9");
    tg_json_escape(out, 4, "abcdef", 6);
    CU_ASSERT_STRING_EQUAL(out, "abc");
}


static void
test_gives_the_offset_of_each_captured_value(void)
{
    const char *doc = "{ \"messages\":[{\"model\":\"no\"}],\"model\" :  "
                      "\"claude\",\"stream\":true,\"model\":\"last\"}";
    size_t step, off;

    for (step = 0; step <= strlen(doc); step++) {
        tg_scan_case_t t;

        CU_ASSERT_TRUE(scan(&t, doc, step));
        /* The last occurrence of a repeated member is the one kept. */
        off = (size_t)(strstr(doc, "\"last\"") - doc);
        CU_ASSERT_EQUAL(t.f[0].offset, off);
        CU_ASSERT_EQUAL(t.f[0].len, 6);
        CU_ASSERT_EQUAL(memcmp(doc + t.f[0].offset, t.model, t.f[0].len), 0);
        off = (size_t)(strstr(doc, "true") - doc);
        CU_ASSERT_EQUAL(t.f[1].offset, off);
        CU_ASSERT_FALSE(t.f[2].found);
    }
}


int
tg_test_json_register(void)
{
    CU_pSuite s = CU_add_suite("json", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "captures top-level members at any split",
                     test_captures_top_level_members) ||
        !CU_add_test(s, "ignores members of nested objects",
                     test_ignores_members_of_nested_objects) ||
        !CU_add_test(s, "literal values end at delimiters",
                     test_literal_values_end_at_delimiters) ||
        !CU_add_test(s, "marks a value longer than its buffer truncated",
                     test_marks_a_value_longer_than_its_buffer_truncated) ||
        !CU_add_test(s, "refuses documents that are not objects",
                     test_refuses_documents_that_are_not_objects) ||
        !CU_add_test(s, "an escaped member name never matches",
                     test_an_escaped_member_name_never_matches) ||
        !CU_add_test(s, "gives the offset of each captured value",
                     test_gives_the_offset_of_each_captured_value) ||
        !CU_add_test(s,
                     "escapes control characters, quotes and invalid "
                     "UTF-8",
                     test_escapes_control_quotes_and_invalid_utf8)) {
        return 1;
    }
    return 0;
}
