// Rules 2 and 5: names and contents.
#include <boost/test/unit_test.hpp>

#include <string>

#include "chat/session/validation.hpp"

using namespace chat::session;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(validation)

BOOST_AUTO_TEST_CASE(utf8_well_formed_and_ill_formed) {
    BOOST_TEST(is_valid_utf8(""));
    BOOST_TEST(is_valid_utf8("plain ascii"));
    BOOST_TEST(is_valid_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
    BOOST_TEST(!is_valid_utf8("\xC3"));                                       // truncated
    BOOST_TEST(!is_valid_utf8("\xC0\xAF"));                                   // overlong '/'
    BOOST_TEST(!is_valid_utf8("\xE0\x80\xAF"));      // overlong, three bytes
    BOOST_TEST(!is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
    BOOST_TEST(!is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    BOOST_TEST(!is_valid_utf8("\x80"));              // lone continuation
    BOOST_TEST(!is_valid_utf8("\xFF"));
    BOOST_TEST(!is_valid_utf8("ok\xE2\x82"));  // truncated at the end
}

BOOST_AUTO_TEST_CASE(trimming_removes_unicode_white_space_at_both_ends_only) {
    BOOST_TEST(trim_white_space("  ann  ") == "ann");
    BOOST_TEST(trim_white_space("\t\r\n ann b\n") == "ann b");
    BOOST_TEST(trim_white_space("\xC2\xA0"
                                "ann"
                                "\xE3\x80\x80") == "ann");  // NBSP, ideographic
    BOOST_TEST(trim_white_space("\xE2\x80\x82") == "");     // en space only
    BOOST_TEST(trim_white_space("") == "");
    BOOST_TEST(trim_white_space("caf\xC3\xA9") == "caf\xC3\xA9");
}

BOOST_AUTO_TEST_CASE(names_of_1_to_32_code_points_are_valid) {
    BOOST_TEST(!name_error("a"));
    BOOST_TEST(!name_error("  Ann Smith  "));
    BOOST_TEST(!name_error(std::string(32, 'x')));
    std::string emoji;
    for (int i = 0; i < 32; ++i) {
        emoji += "\xF0\x9F\x98\x80";  // 32 code points, 128 bytes
    }
    BOOST_TEST(!name_error(emoji));
    BOOST_TEST(!name_error("   " + std::string(32, 'x') + "   "));  // trimmed first
}

BOOST_AUTO_TEST_CASE(invalid_names_are_refused_with_a_reason) {
    BOOST_TEST(name_error("")->find("empty") != std::string::npos);
    BOOST_TEST(name_error(" \t\n ")->find("empty") != std::string::npos);
    BOOST_TEST(name_error(std::string(33, 'x'))->find("32") != std::string::npos);
    std::string emoji_33;
    for (int i = 0; i < 33; ++i) {
        emoji_33 += "\xE2\x82\xAC";  // 33 code points of three bytes
    }
    BOOST_TEST(name_error(emoji_33).has_value());
    BOOST_TEST(name_error("a\tb")->find("control") != std::string::npos);
    BOOST_TEST(name_error("a"s + '\0' + "b")->find("control") != std::string::npos);
    BOOST_TEST(name_error("a\xC2\x85"
                          "b")
                   ->find("control") != std::string::npos);  // U+0085 inside
    BOOST_TEST(name_error("bad\xFF")->find("UTF-8") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(content_rules) {
    BOOST_TEST(!content_error("hello", 4096));
    BOOST_TEST(!content_error("  padded  ", 4096));
    BOOST_TEST(!content_error(std::string(4096, 'x'), 4096));
    BOOST_TEST(content_error(std::string(4097, 'x'), 4096)->find("too long") != std::string::npos);
    BOOST_TEST(content_error("", 4096)->find("empty") != std::string::npos);
    BOOST_TEST(content_error(" \n\t ", 4096)->find("empty") != std::string::npos);
    BOOST_TEST(content_error("bad\xC0\xAF", 4096)->find("UTF-8") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
