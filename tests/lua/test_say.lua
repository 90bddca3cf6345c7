-- test_say.lua - scripts/cw/say.lua speaks numbers, digits, durations, dates
-- and times with Russian and English grammar, using only prompts that
-- sounds/prompts.txt renders.
local src = os.getenv("CW_SOURCE_DIR") or "."
package.path = src .. "/scripts/?.lua;" .. package.path
local say = require("cw.say")

local failures, passed = 0, 0

-- every prompt of the list, as "lang/name"
local known = {}
for line in io.lines(src .. "/sounds/prompts.txt") do
    local lang, name = line:match("^(%a%a) ([%w_]+) ")
    if lang then known[lang .. "/" .. name] = true end
end

local function check(name, lang, kind, value, expect, opts)
    local got, err = say.words(lang, kind, value, opts)
    local ok = got ~= nil and #got == #expect
    if ok then
        for i = 1, #expect do
            if got[i] ~= lang .. "/" .. expect[i] then ok = false end
            if not known[got[i]] then ok = false end
        end
    end
    if ok then
        passed = passed + 1
    else
        failures = failures + 1
        print(("FAIL %s: got %s, want %s"):format(name,
            got and table.concat(got, " ") or ("error " .. tostring(err)),
            table.concat(expect, " ")))
    end
end

local function check_err(name, lang, kind, value)
    local got, err = say.words(lang, kind, value)
    if got == nil and type(err) == "string" then
        passed = passed + 1
    else
        failures = failures + 1
        print("FAIL " .. name .. ": expected an error")
    end
end

-- Russian numbers: gender of 1 and 2, forms of thousand/million
check("ru 0", "ru", "number", 0, {"n_0"})
check("ru 21", "ru", "number", 21, {"n_20", "n_1"})
check("ru 2 feminine", "ru", "number", 2, {"n_2f"}, {gender = "f"})
check("ru 1001", "ru", "number", 1001, {"n_1f", "thousand_1", "n_1"})
check("ru 1000 one thousand", "ru", "number", 1000, {"n_1f", "thousand_1"})
check("ru 2002", "ru", "number", 2002, {"n_2f", "thousand_2", "n_2"})
check("ru 5000", "ru", "number", 5000, {"n_5", "thousand_5"})
check("ru 11000", "ru", "number", 11000, {"n_11", "thousand_5"})
check("ru 21000", "ru", "number", 21000, {"n_20", "n_1f", "thousand_1"})
check("ru 22 million", "ru", "number", 22000000, {"n_20", "n_2", "million_2"})
check("ru 345", "ru", "number", 345, {"n_300", "n_40", "n_5"})
check("ru -7", "ru", "number", -7, {"minus", "n_7"})
-- English numbers
check("en 0", "en", "number", 0, {"n_0"})
check("en 115", "en", "number", 115, {"n_1", "hundred", "n_15"})
check("en 2024", "en", "number", 2024, {"n_2", "thousand", "n_20", "n_4"})
check("en 1000000", "en", "number", 1000000, {"n_1", "million"})
-- digits
check("en digits", "en", "digits", "40#*", {"n_4", "n_0", "hash", "star"})
check("ru digits", "ru", "digits", "12", {"n_1", "n_2"})
-- durations: minutes and seconds feminine in Russian
check("ru 1h 2m 5s", "ru", "duration", 3725,
    {"n_1", "hour_1", "n_2f", "minute_2", "n_5", "second_5"})
check("ru 21 min", "ru", "duration", 21 * 60, {"n_20", "n_1f", "minute_1"})
check("ru 12 min", "ru", "duration", 12 * 60, {"n_12", "minute_5"})
check("ru 0 s", "ru", "duration", 0, {"n_0", "second_5"})
check("en 1 min 1 s", "en", "duration", 61, {"n_1", "minute", "n_1", "second"})
check("en 3 h", "en", "duration", 3 * 3600, {"n_3", "hours"})
check("en 2 days", "en", "duration", 2 * 86400 + 120, {"n_2", "days", "n_2", "minutes"})
-- dates
check("ru 2024-03-08", "ru", "date", "2024-03-08",
    {"ord_8", "month_3", "n_2f", "thousand_2", "n_20", "ord_gen_4", "year_gen"})
check("ru 2000-01-01", "ru", "date", "2000-01-01", {"ord_1", "month_1", "ord_gen_2000", "year_gen"})
check("ru 1999-12-31", "ru", "date", {year = 1999, month = 12, day = 31},
    {"n_30", "ord_1", "month_12", "thousand_1", "n_900", "n_90", "ord_gen_9", "year_gen"})
check("ru 2020-05-20", "ru", "date", "2020-05-20",
    {"ord_20", "month_5", "n_2f", "thousand_2", "ord_gen_20", "year_gen"})
check("ru 2100-02-11", "ru", "date", "2100-02-11",
    {"ord_11", "month_2", "n_2f", "thousand_2", "ord_gen_100", "year_gen"})
check("en 2024-03-21", "en", "date", "2024-03-21", {"month_3", "n_20", "ord_1", "n_20", "n_20", "n_4"})
check("en 2005-07-04", "en", "date", "2005-07-04", {"month_7", "ord_4", "n_2", "thousand", "n_5"})
check("en 1907-07-30", "en", "date", "1907-07-30", {"month_7", "ord_30", "n_19", "oh", "n_7"})
check("en no year", "en", "date", "2024-12-25", {"month_12", "n_20", "ord_5"}, {no_year = true})
-- times
check("ru 14:05", "ru", "time", "14:05", {"n_14", "hour_5", "n_5", "minute_5"})
check("ru 21:01", "ru", "time", "21:01", {"n_20", "n_1", "hour_1", "n_1f", "minute_1"})
check("ru 03:00", "ru", "time", "03:00", {"n_3", "hour_2"})
check("en 14:05", "en", "time", "14:05", {"n_2", "oh", "n_5", "pm"})
check("en 00:00", "en", "time", "00:00", {"n_12", "oclock", "am"})
check("en 09:45", "en", "time", {hour = 9, min = 45}, {"n_9", "n_40", "n_5", "am"})
-- bad input gets an error, not a crash
check_err("bad lang", "de", "number", 1)
check_err("bad kind", "en", "money", 1)
check_err("bad number", "en", "number", "12a")
check_err("fraction", "ru", "number", 1.5)
check_err("bad digits", "en", "digits", "12x")
check_err("bad date", "ru", "date", "2024-13-01")
check_err("bad time", "en", "time", "25:00")
check_err("negative duration", "en", "duration", -3)

print(("%d passed, %d failed"):format(passed, failures))
os.exit(failures == 0 and 0 or 1)
