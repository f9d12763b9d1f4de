"""The content of the instruction-following constraints task (`make_constraints.py`): everyday questions,
each with three short, fluent, on-topic answers written for this project.

Why three answers per question: a constraint's labelled best response and its violating ones are built
from the same question's answers, so every response is on topic and the judge cannot tell them apart by
content, only by the property the prompt asks for (case, length, a word, an ending, a format). Answers are
plain prose in normal case, with no double quotes, so each constraint's transformations start from the
same neutral text.
"""

QUESTIONS: tuple[tuple[str, tuple[str, str, str]], ...] = (
    ("Why is the sky blue?", (
        "Sunlight is scattered by the gases in the air, and blue light scatters much more than red light. That scattered blue light reaches our eyes from every direction.",
        "The atmosphere bends short blue wavelengths around far more than long red ones, so the whole sky glows blue during the day.",
        "Air molecules scatter blue light strongly. At sunset the light travels through more air, which is why the sky turns orange instead.")),
    ("How do plants make their food?", (
        "Plants use photosynthesis: their leaves capture sunlight and turn water and carbon dioxide into sugar and oxygen.",
        "Inside the leaves, chlorophyll absorbs light energy. The plant uses that energy to build sugars from air and water.",
        "A plant takes in carbon dioxide through tiny pores and water through its roots, then uses sunlight to combine them into food.")),
    ("Why do we need sleep?", (
        "Sleep lets the brain store memories and clear out waste built up during the day. It also helps the body repair muscles.",
        "While we sleep, the body restores energy and the immune system gets stronger. Without enough rest, focus and mood suffer.",
        "Sleep gives the brain time to sort what we learned. Adults usually need about seven to nine hours each night.")),
    ("How does a refrigerator keep food cold?", (
        "A refrigerator pumps a coolant through pipes. The coolant absorbs heat inside the box and releases it through coils at the back.",
        "It moves heat rather than making cold: a compressor squeezes a gas, and as the gas expands again it pulls warmth out of the food.",
        "The fridge circulates a special fluid that evaporates inside and takes the heat with it, then gives that heat away outside.")),
    ("What causes the seasons?", (
        "The Earth is tilted on its axis, so for part of the year each half leans toward the sun and gets more direct sunlight.",
        "Seasons come from the tilt of the planet. When your hemisphere points toward the sun, days are longer and warmer.",
        "It is not the distance from the sun. The tilt changes how high the sun climbs in the sky and how long it shines each day.")),
    ("How can I make a cup of tea taste better?", (
        "Use fresh water that has just boiled, and let the leaves steep for three to five minutes before removing them.",
        "Warm the teapot first and measure the leaves carefully. A slice of lemon or a little honey can brighten the flavour.",
        "Good loose leaves make a big difference. Do not steep green tea in boiling water, because it turns bitter.")),
    ("Why do cats purr?", (
        "Cats often purr when they are relaxed and content, such as while being stroked. The sound comes from muscles in the throat.",
        "Purring is a way for cats to communicate comfort, but they also purr when hurt or scared to calm themselves.",
        "A purr is made by rapid vibrations of the voice box. Kittens purr to tell their mother that they are fine.")),
    ("How do vaccines work?", (
        "A vaccine shows the immune system a harmless piece or weakened form of a germ, so the body learns to recognise it.",
        "Vaccines train the body to make antibodies in advance. If the real germ arrives later, the defence is already prepared.",
        "They work like a practice drill for the immune system, which then remembers the threat and reacts quickly.")),
    ("What is the best way to learn a new language?", (
        "Practise a little every day and speak with native speakers as early as possible, even if you make mistakes.",
        "Combine vocabulary study with listening to podcasts, films and music in the language. Regular exposure matters most.",
        "Set small goals, use flashcards for new words, and try to think in the language during ordinary tasks.")),
    ("Why does bread rise?", (
        "Yeast in the dough eats sugar and releases carbon dioxide gas. The gas gets trapped by gluten and makes the dough swell.",
        "Bread rises because tiny bubbles form as the yeast ferments. Kneading builds a stretchy network that holds those bubbles.",
        "The yeast produces gas while the dough rests in a warm place, and the heat of the oven makes the bubbles expand further.")),
    ("How do bees make honey?", (
        "Bees collect nectar from flowers and store it in their stomachs. Back at the hive they pass it to other bees, who fan it until the water evaporates.",
        "Honey is nectar that bees have broken down with enzymes and dried in wax cells. They seal each cell once it is thick enough.",
        "Worker bees visit thousands of flowers, carry the nectar home, and reduce it into a sweet, sticky food for the winter.")),
    ("Why should I drink water during exercise?", (
        "Exercise makes you sweat, and losing too much fluid can cause tiredness, headaches and cramps. Small sips keep you going.",
        "Water helps control body temperature and carries nutrients to working muscles, so staying hydrated improves performance.",
        "Even mild dehydration reduces strength and focus. Drink before, during and after a workout, especially in hot weather.")),
    ("How does a compass work?", (
        "A compass needle is a small magnet that lines up with the magnetic field of the Earth, so one end points north.",
        "The Earth acts like a giant magnet. The magnetised needle swings freely and settles along that field.",
        "Inside the compass, a light needle balances on a pivot. Magnetism pulls it toward the magnetic north pole.")),
    ("What makes a rainbow?", (
        "A rainbow appears when sunlight enters raindrops, bends, reflects inside them and splits into its colours.",
        "Each raindrop acts like a tiny prism. Light of different colours bends by different amounts, spreading into a band.",
        "You see a rainbow when the sun is behind you and rain is in front. The drops separate white light into red through violet.")),
    ("How can I save money on groceries?", (
        "Plan your meals for the week and shop with a list, so you only buy what you will actually use.",
        "Compare prices per unit, choose store brands, and buy fruit and vegetables that are in season.",
        "Avoid shopping when hungry, cook larger batches, and freeze leftovers instead of throwing them away.")),
    ("Why do leaves change colour in autumn?", (
        "As days get shorter, trees stop making chlorophyll, the green pigment. The yellow and orange pigments underneath then show through.",
        "Cooler weather and less light make the green fade. Some trees also produce red pigments from sugars trapped in the leaves.",
        "Trees prepare for winter by breaking down the green parts of their leaves, which reveals warmer colours before they fall.")),
    ("How does the heart pump blood?", (
        "The heart is a muscle with four chambers. It squeezes in a steady rhythm, pushing blood out through the arteries.",
        "Electrical signals make the heart contract. Valves open and close so the blood flows in only one direction.",
        "Blood returns to the right side, goes to the lungs for oxygen, then the left side pumps it to the rest of the body.")),
    ("What is the difference between weather and climate?", (
        "Weather is what happens in the air on a given day, like rain or sunshine. Climate is the average pattern over many years.",
        "Weather changes from hour to hour, while climate describes the typical conditions of a region across decades.",
        "Think of weather as your mood today and climate as your personality: one is short term, the other is long term.")),
    ("How do I keep houseplants healthy?", (
        "Give them the right amount of light for their type and water only when the top of the soil feels dry.",
        "Most houseplants die from too much water. Use pots with drainage holes and feed them lightly in spring and summer.",
        "Wipe dust off the leaves, turn the pots now and then, and move plants away from cold drafts in winter.")),
    ("Why is exercise good for the brain?", (
        "Exercise increases blood flow to the brain, which brings more oxygen and helps new connections form between nerve cells.",
        "Physical activity releases chemicals that improve mood and memory. Regular walks can even lower stress.",
        "Moving your body helps you sleep better and think more clearly, and it supports learning as you age.")),
    ("How do airplanes stay in the air?", (
        "The wings are shaped so that air moving over them creates lift, an upward force that balances the weight of the plane.",
        "Engines push the plane forward fast enough for the wings to deflect air downward, and the air pushes the wings up in return.",
        "Lift comes from the angle and curve of the wings. As long as the plane moves fast enough, lift beats gravity.")),
    ("What should I pack for a day hike?", (
        "Bring plenty of water, some snacks, a map, sunscreen and a light jacket in case the weather turns.",
        "Pack a small first aid kit, a charged phone, comfortable shoes and layers of clothing you can add or remove.",
        "Carry food with energy, a refillable bottle, a hat and a torch, even if you plan to be back before dark.")),
    ("Why do onions make us cry?", (
        "Cutting an onion breaks its cells and releases a gas that irritates the eyes. The eyes make tears to wash it away.",
        "When you slice an onion, chemicals mix and form a sulfur compound that floats up and stings your eyes.",
        "A sharp knife damages fewer cells, and chilling the onion first slows the reaction, so both help you cry less.")),
    ("How does recycling help the environment?", (
        "Recycling turns old materials into new products, which saves raw resources and reduces the rubbish sent to landfill.",
        "Making goods from recycled paper, glass or metal usually needs less energy than starting from fresh materials.",
        "It cuts pollution and protects forests, and it keeps plastic out of rivers and oceans where it harms wildlife.")),
    ("What makes a good bedtime routine?", (
        "Go to bed and wake up at the same time every day, and keep your bedroom dark, quiet and cool.",
        "Avoid screens and heavy meals late in the evening. A short wind down with a book can help you fall asleep.",
        "Limit caffeine after lunch and get some daylight in the morning to keep your body clock steady.")),
    ("How do volcanoes form?", (
        "Volcanoes form where molten rock from deep inside the Earth rises through cracks in the crust and erupts at the surface.",
        "Many volcanoes sit where tectonic plates meet. Magma pushes up, and layers of lava and ash build a mountain over time.",
        "Hot spots under the crust can also feed volcanoes, which is how island chains like Hawaii were created.")),
    ("Why is reading to children important?", (
        "Reading aloud builds vocabulary and listening skills, and it helps children understand how stories work.",
        "Shared reading time strengthens the bond between parent and child and encourages a lifelong love of books.",
        "Children who hear stories early often find it easier to learn to read themselves when they start school.")),
    ("How does a microwave oven heat food?", (
        "A microwave oven sends out waves that make water molecules in the food vibrate quickly, and that motion produces heat.",
        "The waves bounce around the metal box and pass into the food, warming it from the outside layers inward.",
        "Food heats because its water absorbs the microwave energy. Dishes without water, like dry plates, stay fairly cool.")),
    ("What are the benefits of walking every day?", (
        "Daily walking strengthens the heart, helps control weight and lowers the risk of many long term illnesses.",
        "A brisk walk lifts your mood, clears your head and improves sleep, and it needs no special equipment.",
        "Walking keeps joints flexible and bones strong. Even twenty minutes a day makes a noticeable difference.")),
    ("Why does the moon change shape?", (
        "The moon does not change shape. We see different amounts of its sunlit half as it travels around the Earth each month.",
        "The phases come from the angle between the sun, the Earth and the moon, which changes as the moon orbits.",
        "When the moon is between us and the sun we see a dark new moon, and when it is opposite we see a full moon.")),
    ("How can I improve my handwriting?", (
        "Slow down, hold the pen loosely and practise forming each letter the same way every time.",
        "Sit up straight, keep the paper at a comfortable angle, and copy a clean model alphabet for a few minutes a day.",
        "Use lined paper to keep letters even, and focus on consistent spacing between words.")),
    ("Why do birds migrate?", (
        "Many birds fly to warmer places in winter because food such as insects and seeds becomes scarce in the cold.",
        "Migration lets birds follow the food and find safe places to raise their young when the seasons change.",
        "Changes in day length trigger the journey. Some species travel thousands of kilometres using the sun and stars to navigate.")),
    ("How do solar panels make electricity?", (
        "Solar panels contain cells made of silicon. When sunlight hits them, it knocks electrons loose and creates an electric current.",
        "Each panel turns light directly into electricity. An inverter then changes that current into the kind homes use.",
        "The panels work best in direct sun, but they still produce some power on cloudy days.")),
    ("What is a healthy breakfast?", (
        "A healthy breakfast combines protein, whole grains and fruit, such as oatmeal with nuts and berries.",
        "Try eggs with wholemeal toast and a piece of fruit. Foods with fibre keep you full until lunch.",
        "Plain yoghurt with seeds and sliced banana is quick, filling and low in added sugar.")),
    ("Why do we have different time zones?", (
        "The Earth turns toward the sun at different moments in different places, so noon cannot happen everywhere at once.",
        "Time zones divide the world into regions whose clocks roughly match the position of the sun, each about fifteen degrees wide.",
        "Before time zones, every town kept its own local time, which made railway timetables confusing.")),
    ("How do fish breathe underwater?", (
        "Fish breathe with gills. Water flows over thin layers full of blood vessels, and oxygen passes from the water into the blood.",
        "A fish gulps water through its mouth and pushes it out past its gills, which pull out the dissolved oxygen.",
        "Gills work like lungs for water. They have a huge surface area, so they can collect enough oxygen.")),
    ("What is a good way to start running?", (
        "Begin with short intervals, alternating a minute of jogging with a few minutes of walking, three times a week.",
        "Buy comfortable shoes, start slowly and increase your distance by no more than about ten percent each week.",
        "Follow a beginner plan, rest between runs and do not worry about speed at first.")),
    ("Why is the ocean salty?", (
        "Rain slowly wears down rocks on land and carries dissolved minerals, including salt, into rivers and then the sea.",
        "When seawater evaporates, the water leaves but the salt stays behind, so over millions of years the ocean became salty.",
        "Vents on the sea floor also add minerals. The salt builds up because the ocean has no outlet.")),
    ("How do I write a good thank you note?", (
        "Mention the specific gift or favour, say how you will use it or what it meant, and send the note promptly.",
        "Keep it short and personal. Start with a warm greeting and finish by looking forward to seeing the person.",
        "Write by hand if you can, because a personal touch shows that you took the time to care.")),
    ("How does a bicycle stay upright?", (
        "A moving bicycle stays up mainly because the rider steers into any lean, moving the wheels back under the centre of mass.",
        "The geometry of the front fork makes the bike steer itself slightly when it tips, which helps it balance.",
        "Speed helps a lot. At walking pace the bike is wobbly, but once it rolls faster small corrections are enough.")),
    ("Why are forests important?", (
        "Forests absorb carbon dioxide, release oxygen and provide homes for a huge number of plants and animals.",
        "Trees hold soil in place, help control floods and cool the air around them with their shade.",
        "Forests also supply wood, fruit and medicines, and millions of people depend on them for their living.")),
    ("How do I make a simple tomato sauce?", (
        "Soften chopped onion and garlic in olive oil, add a tin of tomatoes, and simmer for twenty minutes with salt.",
        "Cook garlic gently in oil, pour in crushed tomatoes, and finish the sauce with fresh basil and a pinch of sugar.",
        "Simmer tomatoes with a little butter and half an onion, then remove the onion and season the sauce to taste.")),
    ("What causes thunder?", (
        "Lightning heats the air around it extremely fast. The air expands so suddenly that it creates a loud shock wave we hear as thunder.",
        "Thunder is the sound of air bursting outward from a lightning bolt. Light travels faster, so we see the flash first.",
        "Count the seconds between the flash and the rumble: about three seconds means the storm is one kilometre away.")),
    ("Why should I back up my computer files?", (
        "Hard drives can fail, laptops get stolen and mistakes happen, so a backup keeps your photos and work safe.",
        "Keep at least one copy of important files on an external drive or in cloud storage, away from the computer itself.",
        "Ransomware and accidental deletion are common. A recent backup lets you restore everything quickly.")),
    ("How does the internet send information?", (
        "Data is cut into small packets, each labelled with an address. Routers pass the packets along until they reach the right computer.",
        "The packets may travel by different paths and are put back in order when they arrive.",
        "Cables, fibre and wireless links connect networks around the world, and shared rules called protocols keep everything working.")),
    ("Why do we yawn?", (
        "Scientists are not completely sure, but yawning may help cool the brain and keep us alert when we are tired or bored.",
        "A yawn stretches the jaw and takes in a deep breath. It is also contagious: seeing someone yawn often makes us do it.",
        "People yawn more before sleep and after waking, which suggests it helps the body switch between states.")),
    ("How can I reduce stress at work?", (
        "Break big tasks into smaller steps, take short breaks and make a list so you can see what really needs doing.",
        "Set clear limits on your working hours, talk to your manager about heavy workloads and protect time for lunch.",
        "Regular exercise, enough sleep and a few minutes of slow breathing can make a busy day feel calmer.")),
    ("What is the water cycle?", (
        "Water evaporates from oceans and lakes, condenses into clouds, falls as rain or snow and flows back to the sea.",
        "The sun heats water into vapour, which cools high in the sky to form droplets. They fall as precipitation and the cycle repeats.",
        "Plants also release water through their leaves, and some water soaks into the ground before returning to rivers.")),
    ("How do glasses help people see?", (
        "Glasses use curved lenses to bend light so that it focuses correctly on the retina at the back of the eye.",
        "For people who are short sighted, the lenses spread light slightly, and for long sighted people they bring it together.",
        "An eye test measures how much correction you need, and the lenses are shaped to match each eye.")),
    ("Why do dogs wag their tails?", (
        "Dogs wag their tails to communicate. A loose, wide wag usually means a happy and friendly dog.",
        "Tail wagging is a signal to other animals and people, but a stiff, high wag can mean the dog feels alert or tense.",
        "Puppies start wagging at a few weeks old, mostly when they feed or play with their littermates.")),
    ("How do I clean a cast iron pan?", (
        "Rinse the pan with hot water while it is still warm and scrub off food with a brush. Dry it completely at once.",
        "Avoid soaking it or putting it in the dishwasher. After drying, rub in a thin layer of oil to keep it seasoned.",
        "For stuck food, scrub with coarse salt and a little water, then heat the pan briefly to drive off moisture.")),
    ("What is gravity?", (
        "Gravity is the force that pulls objects with mass toward one another. It keeps us on the ground and the planets around the sun.",
        "The more massive an object is, the stronger its gravity. The pull also gets weaker as things move farther apart.",
        "Einstein described gravity as the bending of space and time by mass, which changes the paths that objects follow.")),
    ("How do I prepare for a job interview?", (
        "Research the company, reread the job description and prepare short examples that show your relevant skills.",
        "Practise answers to common questions out loud, plan your journey and have a couple of questions ready to ask.",
        "Dress neatly, arrive a little early and bring copies of your CV along with a notebook.")),
    ("Why do we get goosebumps?", (
        "Tiny muscles at the base of each hair contract when we are cold or frightened, pulling the hairs upright.",
        "Goosebumps are a leftover reflex. In furry animals, raised hair traps warm air or makes them look bigger.",
        "Strong feelings, such as hearing moving music, can also trigger the same reaction in the skin.")),
    ("How does soap clean our hands?", (
        "Soap molecules have one end that likes water and another that likes oil, so they grab grease and dirt and let water rinse them away.",
        "Washing with soap breaks apart the fatty layer around many germs. Scrubbing for twenty seconds gives it time to work.",
        "Soap lifts dirt off the skin into tiny bubbles that water can carry down the drain.")),
    ("What makes a good password?", (
        "A good password is long, unique for each account and hard to guess, such as several random words joined together.",
        "Avoid names, birthdays and common words. A password manager can create and remember strong passwords for you.",
        "Length matters more than odd symbols. Turn on two step login as well for important accounts.")),
    ("Is breakfast really the most important meal?", (
        "After a night without food, breakfast refuels the body and can help concentration during the morning.",
        "The phrase partly came from old cereal adverts. What matters most is the overall quality of your diet.",
        "Some people feel better with an early meal, while others do fine without one. Listen to your own hunger.")),
    ("How do earthquakes happen?", (
        "The outer layer of the Earth is broken into plates. When they grind past each other and suddenly slip, the ground shakes.",
        "Stress builds up along faults over many years. When the rocks finally break, energy travels outward as seismic waves.",
        "Most earthquakes happen near plate boundaries, and scientists measure their strength with the moment magnitude scale.")),
    ("What are some tips for a long car journey?", (
        "Check the tyres and oil before leaving, plan rest stops every two hours and keep water and snacks in the car.",
        "Download maps and music in advance, share the driving if possible and avoid setting off when you are tired.",
        "Pack a blanket and a phone charger, and tell someone your route and expected arrival time.")),
    ("How do seeds grow into plants?", (
        "A seed contains a tiny plant and a store of food. With water, warmth and air, it swells and sends out a root and a shoot.",
        "Germination starts when the seed soaks up water. The root grows down, the shoot grows up, and the first leaves open toward the light.",
        "Once the leaves can make food from sunlight, the young plant no longer needs the supply packed inside the seed.")),
    ("Why is it important to wear sunscreen?", (
        "Sunscreen protects the skin from ultraviolet rays that cause sunburn, early wrinkles and skin cancer.",
        "Even on cloudy days, much of the ultraviolet light gets through. Reapply every two hours and after swimming.",
        "Choose a broad spectrum cream with a high protection factor, and use enough to cover all exposed skin.")),
    ("How do noise cancelling headphones work?", (
        "Tiny microphones pick up the outside noise, and the headphones play the opposite sound wave to cancel it out.",
        "The two waves meet and flatten each other, so steady sounds like engine hum almost disappear.",
        "They work best on low, constant noise. Sudden voices or clatter are harder to block, so padding helps as well.")),
    ("What is the best way to memorise facts?", (
        "Review the material several times with growing gaps between sessions, a method called spaced repetition.",
        "Test yourself instead of just rereading. Trying to recall an answer strengthens the memory much more.",
        "Link new facts to things you already know, make up vivid images and teach the ideas to someone else.")),
    ("Why do stars twinkle?", (
        "Starlight passes through moving layers of air that bend it slightly in different directions, so the star seems to flicker.",
        "Twinkling is caused by turbulence in the atmosphere. Seen from space, stars shine with a steady light.",
        "Planets twinkle less because they appear as tiny discs rather than single points of light.")),
    ("How can I make my home more energy efficient?", (
        "Seal drafts around windows and doors, add insulation to the loft and switch to LED light bulbs.",
        "Lower the heating by one degree, wash clothes at cooler temperatures and turn off devices at the wall.",
        "A smart thermostat and thick curtains help keep warmth in, and they can pay for themselves within a few years.")),
    ("What do bees do in winter?", (
        "Honey bees stay inside the hive and cluster together in a ball, shivering their wing muscles to keep warm.",
        "The colony lives on the honey it stored during summer. The queen stays in the middle of the cluster where it is warmest.",
        "Most bumblebees die off in autumn, and only young queens survive the winter by sleeping underground.")),
    ("How does a thermometer measure temperature?", (
        "In a liquid thermometer, the liquid expands when it warms and rises up a thin tube marked with a scale.",
        "Digital thermometers use a sensor whose electrical resistance changes with temperature, and a chip turns that into a reading.",
        "Infrared thermometers measure the heat an object gives off, so they can read a temperature without touching it.")),
    ("Why is it good to eat vegetables?", (
        "Vegetables provide vitamins, minerals and fibre that support digestion, the immune system and a healthy heart.",
        "They are filling but low in calories, which makes it easier to keep a healthy weight.",
        "Eating a variety of colours gives you a wider range of nutrients, so mix greens, reds and oranges on your plate.")),
    ("How do I make friends in a new city?", (
        "Join a club or class based on something you enjoy, such as sport, music or cooking, and go regularly.",
        "Say yes to invitations, talk to neighbours and colleagues, and suggest a coffee with people you get along with.",
        "Volunteering is a great way to meet kind people while helping your new community.")),
    ("How do clouds form?", (
        "Warm, moist air rises and cools. The water vapour condenses on tiny specks of dust and forms droplets that we see as clouds.",
        "Clouds appear when air cannot hold all its moisture any longer. The extra vapour turns into droplets or ice crystals.",
        "Mountains, weather fronts and heat from the ground all push air upward, which is why clouds form in those places.")),
    ("Why do we have leap years?", (
        "One trip around the sun takes about 365 and a quarter days. Adding a day every four years keeps the calendar matched to the seasons.",
        "Without leap years, the calendar would drift by about a day every four years, and summer would slowly move into autumn.",
        "February gets a twenty ninth day in a leap year. Century years skip it unless they divide by four hundred.")),
    ("How do I keep my bike in good condition?", (
        "Keep the chain clean and lightly oiled, and check the tyre pressure every week or two.",
        "Test the brakes before each ride, tighten loose bolts and store the bike somewhere dry.",
        "Wipe off mud after wet rides and take it for a service once a year to catch worn parts early.")),
    ("What causes ocean tides?", (
        "Tides are caused mainly by the pull of the moon, which makes the ocean bulge on the sides of the Earth nearest and farthest from it.",
        "As the Earth spins, coastlines pass through these bulges, so most places get two high tides and two low tides a day.",
        "The sun also affects tides. When it lines up with the moon, we get especially high spring tides.")),
    ("Why is it hard to wake up in winter?", (
        "Dark mornings delay the release of the hormones that wake us, because our body clock relies on light.",
        "Less daylight raises levels of melatonin, the sleep hormone, which makes getting out of a warm bed harder.",
        "A bright lamp in the morning or a short walk outside can help your body feel more awake.")),
    ("How do electric cars work?", (
        "Electric cars store energy in a large battery, which powers an electric motor that turns the wheels.",
        "Instead of burning fuel, they convert electricity into motion very efficiently, and braking can recharge the battery.",
        "You charge them from a plug at home or at public stations, and they have far fewer moving parts than petrol cars.")),
    ("What is the best way to cook rice?", (
        "Rinse the rice, add about one and a half cups of water per cup, bring to a boil, then cover and simmer gently for fifteen minutes.",
        "Let the cooked rice rest with the lid on for five minutes before fluffing it with a fork.",
        "A rice cooker makes it easy, but a heavy pot with a tight lid works just as well on the stove.")),
    ("Why do people snore?", (
        "Snoring happens when air cannot flow freely through the nose and throat, so the relaxed tissues vibrate.",
        "Colds, allergies, alcohol and sleeping on your back can all narrow the airway and make snoring worse.",
        "Loud snoring with pauses in breathing can be a sign of sleep apnoea, which a doctor should check.")),
    ("How do owls see at night?", (
        "Owls have huge eyes packed with light sensitive rod cells, which let them see in very dim light.",
        "Their eyes are shaped like tubes and cannot move much, so owls turn their heads to look around.",
        "Owls also rely on their excellent hearing. Some can catch prey in total darkness by sound alone.")),
    ("How can I be more productive in the morning?", (
        "Prepare the night before, get up at a steady time and tackle your most important task first.",
        "Avoid checking email and social media right away, and give yourself a short block of focused work.",
        "A glass of water, some daylight and a simple breakfast help you feel alert quickly.")),
    ("Why do apples turn brown after cutting?", (
        "Cutting an apple lets oxygen reach its flesh, and an enzyme reacts with it to make brown pigments.",
        "The browning is harmless. A squeeze of lemon juice slows it down because the acid blocks the enzyme.",
        "Keeping the slices in cold water or wrapping them tightly also limits the contact with air.")),
)
