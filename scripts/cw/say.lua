--[[
say.lua - turn a number, digit string, duration, date or time into the list
of prompt names that speak it, in Russian or English.

Pure Lua, no I/O: the names are those of sounds/prompts.txt, returned as
"<lang>/<name>" so they can go straight to call:play() / media_play().

  local say = require("cw.say")
  say.words("ru", "number", 21)            --> {"ru/n_20", "ru/n_1"}
  say.words("ru", "number", 2, {gender = "f"})
  say.words("en", "digits", "12#")
  say.words("ru", "duration", 3725)        -- seconds
  say.words("en", "date", "2024-03-08")    -- or {year=, month=, day=}
  say.words("ru", "time", "14:05")         -- or {hour=, min=}

Russian grammar: 1 and 2 agree in gender (thousands are feminine, minutes
and seconds too, hours and millions masculine), units take the form for
1 / 2-4 / 5+ (with 11-14 as 5+); dates use the neuter ordinal of the day,
the month in the genitive and the year as a genitive ordinal ("две тысячи
двадцать четвёртого года").
Returns nil and a message for a value it cannot say.
]]

local say = {}

local function ru_form(n)
    local r100 = n % 100
    if r100 >= 11 and r100 <= 14 then return "5" end
    local r10 = n % 10
    if r10 == 1 then return "1" end
    if r10 >= 2 and r10 <= 4 then return "2" end
    return "5"
end

-- words for 1..999 in Russian; gender "m", "f" or "n" for the final 1 or 2
local function ru_under_1000(out, n, gender)
    local h = n // 100 * 100
    local r = n % 100
    if h > 0 then out[#out + 1] = "n_" .. h end
    if r == 0 then return end
    local u = r
    if r >= 20 then
        out[#out + 1] = "n_" .. (r // 10 * 10)
        u = r % 10
        if u == 0 then return end
    end
    if u == 1 and gender == "f" then
        out[#out + 1] = "n_1f"
    elseif u == 1 and gender == "n" then
        out[#out + 1] = "n_1n"
    elseif u == 2 and gender == "f" then
        out[#out + 1] = "n_2f"
    else
        out[#out + 1] = "n_" .. u
    end
end

local function ru_number(out, n, gender)
    if n < 0 then
        out[#out + 1] = "minus"
        n = -n
    end
    if n == 0 then
        out[#out + 1] = "n_0"
        return
    end
    local groups = {
        {1000000000, "billion", "m"},
        {1000000, "million", "m"},
        {1000, "thousand", "f"},
    }
    for _, g in ipairs(groups) do
        local v = n // g[1]
        if v > 0 then
            ru_under_1000(out, v, g[3])
            out[#out + 1] = g[2] .. "_" .. ru_form(v)
            n = n % g[1]
        end
    end
    if n > 0 then ru_under_1000(out, n, gender or "m") end
end

local function en_under_1000(out, n)
    local h = n // 100
    local r = n % 100
    if h > 0 then
        out[#out + 1] = "n_" .. h
        out[#out + 1] = "hundred"
    end
    if r == 0 then return end
    if r < 20 then
        out[#out + 1] = "n_" .. r
    else
        out[#out + 1] = "n_" .. (r // 10 * 10)
        if r % 10 > 0 then out[#out + 1] = "n_" .. (r % 10) end
    end
end

local function en_number(out, n)
    if n < 0 then
        out[#out + 1] = "minus"
        n = -n
    end
    if n == 0 then
        out[#out + 1] = "n_0"
        return
    end
    for _, g in ipairs({{1000000000, "billion"}, {1000000, "million"}, {1000, "thousand"}}) do
        local v = n // g[1]
        if v > 0 then
            en_under_1000(out, v)
            out[#out + 1] = g[2]
            n = n % g[1]
        end
    end
    if n > 0 then en_under_1000(out, n) end
end

-- ordinal of 1..31 (dates): prefix "ord_" names; tens above 20 stay cardinal
local function ordinal_day(out, d)
    if d < 20 or d % 10 == 0 then
        out[#out + 1] = "ord_" .. d
    else
        out[#out + 1] = "n_" .. (d // 10 * 10)
        out[#out + 1] = "ord_" .. (d % 10)
    end
end

-- Russian year as a genitive ordinal: 2024 -> две тысячи двадцать четвёртого
local function ru_year(out, y)
    local t, h, r = y // 1000, y % 1000 // 100 * 100, y % 100
    if r == 0 and h == 0 then
        if t == 1 or t == 2 then
            out[#out + 1] = "ord_gen_" .. (t * 1000)
            return true
        end
        return false
    end
    if t == 1 then
        out[#out + 1] = "thousand_1"
    elseif t > 1 then
        ru_under_1000(out, t, "f")
        out[#out + 1] = "thousand_" .. ru_form(t)
    end
    if r == 0 then
        out[#out + 1] = "ord_gen_" .. h
        return true
    end
    if h > 0 then out[#out + 1] = "n_" .. h end
    if r < 20 or r % 10 == 0 then
        out[#out + 1] = "ord_gen_" .. r
    else
        out[#out + 1] = "n_" .. (r // 10 * 10)
        out[#out + 1] = "ord_gen_" .. (r % 10)
    end
    return true
end

local function en_year(out, y)
    if y >= 2000 and y <= 2009 or y % 1000 == 0 then
        en_number(out, y)
    elseif y % 100 == 0 then
        en_number(out, y // 100)
        out[#out + 1] = "hundred"
    else
        en_number(out, y // 100)
        if y % 100 < 10 then out[#out + 1] = "oh" end
        en_number(out, y % 100)
    end
end

local function parse_date(v)
    if type(v) == "table" then return tonumber(v.year), tonumber(v.month), tonumber(v.day) end
    if type(v) ~= "string" then return nil end
    local y, m, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    return tonumber(y), tonumber(m), tonumber(d)
end

local function parse_time(v)
    if type(v) == "table" then return tonumber(v.hour), tonumber(v.min or 0) end
    if type(v) ~= "string" then return nil end
    local h, m = v:match("^(%d%d?):(%d%d)$")
    return tonumber(h), tonumber(m)
end

local function integer(v)
    local n = math.tointeger(tonumber(v))
    return n
end

local kinds = {}

function kinds.number(lang, v, opts, out)
    local n = integer(v)
    if not n then return "not an integer: " .. tostring(v) end
    if math.abs(n) >= 1000000000000 then return "number too large: " .. n end
    if lang == "ru" then
        ru_number(out, n, opts.gender)
    else
        en_number(out, n)
    end
end

function kinds.digits(lang, v, opts, out)
    local s = tostring(v)
    if not s:match("^[0-9*#]+$") then return "not a digit string: " .. s end
    for c in s:gmatch(".") do
        if c == "*" then
            out[#out + 1] = "star"
        elseif c == "#" then
            out[#out + 1] = "hash"
        else
            out[#out + 1] = "n_" .. c
        end
    end
end

-- one unit: ru (value, unit, gender) with its 1/2/5 form; en singular/plural
local function unit(lang, out, n, name, gender)
    if lang == "ru" then
        ru_number(out, n, gender)
        out[#out + 1] = name .. "_" .. ru_form(n)
    else
        en_number(out, n)
        out[#out + 1] = n == 1 and name or name .. "s"
    end
end

function kinds.duration(lang, v, opts, out)
    local s = integer(v)
    if not s or s < 0 then return "not a duration in seconds: " .. tostring(v) end
    local d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    s = s % 60
    if d > 0 then unit(lang, out, d, "day", "m") end
    if h > 0 then unit(lang, out, h, "hour", "m") end
    if m > 0 then unit(lang, out, m, "minute", "f") end
    if s > 0 or #out == 0 then unit(lang, out, s, "second", "f") end
end

function kinds.date(lang, v, opts, out)
    local y, m, d = parse_date(v)
    if not y or not m or m < 1 or m > 12 or not d or d < 1 or d > 31 or y < 1 or y > 2999 then
        return "not a date (YYYY-MM-DD): " .. tostring(v)
    end
    if lang == "ru" then
        ordinal_day(out, d)
        out[#out + 1] = "month_" .. m
        if not opts.no_year then
            if not ru_year(out, y) then return "year not speakable: " .. y end
            out[#out + 1] = "year_gen"
        end
    else
        out[#out + 1] = "month_" .. m
        ordinal_day(out, d)
        if not opts.no_year then en_year(out, y) end
    end
end

function kinds.time(lang, v, opts, out)
    local h, m = parse_time(v)
    if not h or h > 23 or not m or m > 59 then return "not a time (HH:MM): " .. tostring(v) end
    if lang == "ru" then
        unit(lang, out, h, "hour", "m")
        if m > 0 then unit(lang, out, m, "minute", "f") end
    else
        local h12 = h % 12
        if h12 == 0 then h12 = 12 end
        en_number(out, h12)
        if m == 0 then
            out[#out + 1] = "oclock"
        else
            if m < 10 then out[#out + 1] = "oh" end
            en_number(out, m)
        end
        out[#out + 1] = h < 12 and "am" or "pm"
    end
end

-- The prompt names for (lang, kind, value); opts.gender ("m", "f", "n") for
-- Russian numbers, opts.no_year for dates. Returns a list, or nil and an error.
function say.words(lang, kind, value, opts)
    if lang ~= "ru" and lang ~= "en" then return nil, "unknown language: " .. tostring(lang) end
    local f = kinds[kind]
    if not f then return nil, "unknown kind: " .. tostring(kind) end
    local out = {}
    local err = f(lang, value, opts or {}, out)
    if err then return nil, err end
    for i, name in ipairs(out) do out[i] = lang .. "/" .. name end
    return out
end

return say
