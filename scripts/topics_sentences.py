BUSINESS = """Central bank holds interest rates steady as inflation cools
Shares of the chipmaker jumped after quarterly revenue beat forecasts
Retail sales fell for a second month as shoppers cut back on spending
The airline will cut two hundred jobs to reduce costs after a weak summer
Oil prices slipped on signs of rising supply from major producers
The startup raised forty million dollars in a funding round led by venture investors
Mortgage rates climbed to their highest level in more than a year
The carmaker recalled thousands of vehicles over a faulty brake sensor
Investors sold bank stocks after a lender warned of higher loan losses
Consumer confidence improved as gas prices eased across the country
The grocery chain agreed to buy a regional rival in an all-cash deal
Factory orders rose more than expected on strong demand for machinery
The company's profit doubled thanks to lower shipping costs
Small businesses say rising rents are squeezing their margins
The stock market closed at a record high on hopes of rate cuts
Unemployment claims dropped to their lowest level since the spring
The software maker announced a share buyback worth two billion dollars
Housing starts slowed as builders struggled with high borrowing costs
The euro weakened against the dollar after disappointing growth data
A strike at the port has delayed shipments of electronics and clothing
The bank reported record earnings from trading and investment fees
The coffee chain plans to open five hundred new stores next year
Exports grew for the third straight quarter despite a stronger currency
The retailer's shares tumbled after it lowered its holiday sales outlook
Analysts expect the merger to create the largest insurer in the region
The budget airline posted its first annual profit since the pandemic
Prices paid by producers rose slightly in the latest monthly report
The telecom group sold its tower business to a pension fund
Gold hit a new high as investors looked for safe assets
The electric vehicle maker missed delivery targets for the quarter
Wage growth outpaced inflation for the first time in two years
The online marketplace cut its fees to win back small sellers
Regulators approved the takeover on condition that some stores are sold
The brewer raised prices to offset higher costs for barley and cans
Corporate bond sales surged as companies rushed to borrow
The furniture retailer filed for bankruptcy after years of falling sales
The shipping company expects freight rates to recover next year
Tech stocks led the market lower after weak guidance from a cloud provider
The hotel group reported strong bookings for the summer season
The government's debt auction drew weak demand from investors
The bakery chain will raise its minimum wage for all store workers
Shares in the drugmaker rose after it announced a cost-cutting plan
The country's trade deficit narrowed as imports of fuel declined
A private equity firm agreed to buy the software company for eight billion
The dollar rose after the jobs report came in stronger than expected
The clothing brand is moving production closer to its main markets
Copper prices fell on worries about slowing construction demand
The insurer raised its dividend after a year of few major claims
Households are saving less as the cost of living keeps rising
The payments company laid off a tenth of its staff
Sales of new homes unexpectedly rose last month
The retailer said online orders now make up half of its revenue
The energy firm will spend more on wind farms and less on oil drilling
The stock exchange will extend trading hours to attract global investors
Farm incomes dropped as prices for wheat and corn fell
The chain of gyms raised membership fees for the first time in five years
The company's chief executive will step down after a profit warning
The central bank surprised markets by raising rates by half a point
The toy maker expects record sales thanks to a hit movie tie-in
Credit card debt reached a new record in the second quarter""".split("\n")

HEALTH = """A daily walk of thirty minutes lowers the risk of heart disease, a study finds
Doctors warn of a sharp rise in flu cases ahead of the winter season
The new vaccine cut hospital stays among older adults by half
Hospitals report long waiting times for emergency care this month
Eating more fiber may reduce the risk of colon cancer, researchers say
The health ministry launched a campaign to get children vaccinated against measles
A shortage of nurses is forcing clinics to close their night shifts
Regular sleep of seven hours is linked to better memory in older people
The drug regulator approved a new treatment for migraine headaches
Cases of childhood obesity have doubled over the past two decades
Experts urge people to wear sunscreen as skin cancer rates climb
A trial found the pill lowered blood pressure in most patients
The clinic offers free screening for diabetes this weekend
Too much screen time before bed can disrupt sleep in teenagers
Public health officials confirmed an outbreak of food poisoning at a school
The hospital opened a new wing for cancer patients and their families
Smoking rates among young adults fell to a record low
A new blood test could detect Alzheimer's disease years earlier
Doctors recommend a flu shot for everyone over six months old
Mental health services struggle to keep up with demand from students
Drinking sugary sodas is tied to a higher risk of type two diabetes
The surgeon general warned about the dangers of vaping for teenagers
Patients who exercised after surgery recovered more quickly
The city will add fluoride to its water to protect children's teeth
A common antibiotic is losing its power against some infections
The study found that loneliness harms health as much as smoking
Nurses went on strike over staffing levels and patient safety
Eating fish twice a week may protect the brain, scientists report
The hospital was fined for failing to control infections in its wards
Allergy season is starting earlier because of warmer springs
A new app helps patients keep track of their medication
Researchers tested a gene therapy for a rare blood disorder
Doctors say the cough that lingers after a cold is usually harmless
The health service will offer free eye tests for people over sixty
Rates of measles have risen in areas with low vaccination coverage
A diet rich in vegetables and olive oil lowers the risk of stroke
The pharmacy chain will sell hearing aids without a prescription
Many adults do not get enough vitamin D during the winter
Heat waves send more elderly people to the emergency room
The trial of the cholesterol drug was stopped early after strong results
Dentists warn that sugary snacks are causing more cavities in children
The hospital is using robots to help with knee replacement surgery
Women who breastfeed have a lower risk of some cancers, a review finds
Health officials track a new strain of the virus in the north
Stress at work is linked to back pain and poor sleep
A low-salt diet helped patients with heart failure, doctors found
The insurer will cover therapy sessions for anxiety and depression
Handwashing remains the best way to stop the spread of stomach bugs
The nation's life expectancy rose for the second year in a row
Doctors say most children with a fever do not need antibiotics
A new clinic will treat patients with long-term pain
Scientists found that yoga can ease symptoms of arthritis
The number of people waiting for hip surgery has reached a record
Pregnant women are urged to get the whooping cough vaccine
Air pollution is linked to more asthma attacks in children
The hospital will ban visitors after a rise in norovirus cases
Regular checkups help catch high blood pressure before it causes harm
A hospital in the capital carried out its first face transplant
Older adults who stay active have a lower risk of falls
The ministry approved funding for more mental health nurses in schools""".split("\n")

POLITICS = """Parliament passed the budget after a long night of debate
The prime minister announced a cabinet reshuffle on Monday
Voters head to the polls on Sunday in a tight presidential race
The opposition leader called for an early election
The senate rejected the bill to raise the retirement age
Lawmakers agreed on a deal to avoid a government shutdown
The foreign minister met her counterpart to discuss the border dispute
The governor signed a law requiring voter identification at polling stations
Polls show the ruling party losing support among young voters
The president vetoed the spending bill passed by congress
Thousands marched in the capital to protest the new labor law
The coalition government collapsed after the junior partner walked out
The mayor won a second term with sixty percent of the vote
Diplomats from both countries resumed peace talks in Geneva
The party chose a former finance minister as its new leader
The supreme court ruled that the election map was unconstitutional
The minister resigned after a scandal over campaign donations
The parliament voted to extend the state of emergency
Leaders of the two countries signed a trade agreement at the summit
The opposition boycotted the vote, calling it a sham
The government plans to cut the number of ministries by a third
Turnout in the local elections was the lowest on record
The senator announced she will run for president next year
The two parties remain divided over immigration reform
The ambassador was summoned after remarks about the election
A new poll puts the challenger ahead by five points
The cabinet approved a plan to raise taxes on the wealthy
The president promised to fight corruption in his first speech
Lawmakers debated a bill to lower the voting age to sixteen
The ruling party lost its majority in the upper house
Protesters demanded the resignation of the interior minister
The government survived a vote of no confidence by three votes
The candidates clashed over health care in the televised debate
The election commission said it would recount ballots in two districts
The foreign ministry condemned the missile test by its neighbor
The new constitution will limit presidents to two terms
The party's campaign focused on housing and the cost of living
The chancellor defended the decision to send more troops abroad
The speaker of the house scheduled a vote on the border bill
The leaders agreed to meet again after the talks ended without a deal
The minister of justice proposed longer sentences for repeat offenders
A referendum on independence will be held in the autumn
The prime minister's approval rating fell after the fuel tax hike
The president pardoned dozens of political prisoners
The city council voted to rename the main square
The opposition accused the government of silencing the press
The election results were delayed by a dispute over mail ballots
The parliament elected a new speaker after weeks of deadlock
The governor declared victory after rivals conceded the race
The summit ended with a joint statement on climate and security
Lawmakers questioned the defense minister about the failed contract
The ruling coalition agreed to hold elections in the spring
The party expelled three members who voted against the budget
The president dissolved parliament and called new elections
The government will hold talks with unions over pension reform
A court banned the former president from running for office
The voters rejected the proposal to change the electoral system
The minister promised a public inquiry into the handling of the crisis
Both parties claimed victory after the midterm elections
The delegation walked out of the talks over the status of the capital""".split("\n")

SCIENCE = """Astronomers discovered a planet that may have liquid water on its surface
Researchers mapped the brain of a fruit fly in full detail
The space agency launched a probe to study the sun's outer layer
Scientists found a new species of frog in the rainforest
A telescope captured the most detailed image yet of a distant galaxy
Physicists measured the mass of the neutrino with new precision
Fossils show that the dinosaur had feathers on its arms
The rover collected rock samples from an ancient lake bed on Mars
Engineers built a battery that charges in under ten minutes
Biologists learned how bees find their way back to the hive
A comet will pass close to Earth and be visible at night next week
Researchers grew tiny human organs in the lab to test drugs
Climate scientists say the ocean is warming faster than expected
The mission will send astronauts around the moon next year
Scientists decoded the genome of the giant tortoise
A new material conducts electricity with almost no loss
Archaeologists uncovered a city buried under the desert sand
The quantum computer solved a problem beyond ordinary machines
Researchers recorded the songs of whales across the whole ocean
The study shows that ice sheets melted quickly at the end of the last ice age
Chemists found a cheaper way to make hydrogen from water
A meteorite that fell last year contains grains older than the sun
The satellite will measure the height of the world's rivers
Scientists observed a black hole tearing apart a star
The robot can walk over rough ground like a goat
Researchers trained a network of cells to play a simple game
A particle collider detected signs of a rare decay
The solar eclipse will be visible across much of the continent
Geologists warn that the volcano shows signs of new activity
Scientists revived worms that were frozen for thousands of years
The probe sent back images of the icy moon's cracked surface
Engineers tested a rocket engine that burns methane
A study of ancient teeth reveals what early humans ate
Researchers built a laser that can cut through steel in seconds
The new telescope in the desert will search for the first stars
Scientists found microplastics in the deepest part of the ocean
A mathematician proved a conjecture that stood for eighty years
The spacecraft landed safely on the far side of the moon
Biologists found that octopuses dream while they sleep
Physicists created the coldest spot in the known universe
Researchers discovered that trees share nutrients through fungi in the soil
The asteroid sample contains the building blocks of life
Astronomers spotted a signal from a galaxy billions of years away
The experiment confirmed a prediction of Einstein's theory
A team of chemists made a plastic that breaks down in seawater
Scientists tracked birds that fly nonstop for eleven days
The study of ice cores reveals the climate of the past million years
Engineers designed a solar panel that works in low light
Researchers found water vapor in the air of a distant planet
A new dinosaur species was named after the farmer who found its bones
The space station crew grew lettuce in orbit
Scientists created a map of every known star in our galaxy
The laboratory produced more energy from fusion than it used
Researchers showed that crows can count out loud
The telescope will study the atmosphere of planets around nearby stars
A new microscope can see individual atoms in motion
Geneticists traced the origins of the domestic dog
The ocean probe recorded sounds from an undersea volcano
Scientists found evidence of an ancient river on Mars
The researchers used sound waves to move tiny objects in the air""".split("\n")

SPORTS = """The home team won the championship with a goal in extra time
The striker scored twice as the club moved to the top of the league
The tennis star reached the final without losing a set
The coach was fired after a run of six straight defeats
The marathon runner broke the course record by two minutes
The club signed the young midfielder on a five-year contract
Rain delayed the final round of the golf tournament
The quarterback threw three touchdown passes in the second half
The national team qualified for the world cup after a draw
The sprinter won gold in the hundred meters at the world championships
The goalkeeper saved a penalty in the last minute of the match
The cyclist took the yellow jersey after a brutal mountain stage
The team lost its star player to a knee injury for the season
The boxer kept his title with a knockout in the ninth round
Fans celebrated in the streets after the cup final
The swimmer set a world record in the four hundred meters
The league suspended the player for three games after a red card
The basketball team won its tenth game in a row
The skier crashed in the downhill but escaped serious injury
The veteran pitcher threw a perfect game on Saturday
The club announced plans for a new stadium with sixty thousand seats
The rugby side came back from twenty points down to win
The referee sent off two players in a heated derby
The champion retired at thirty-five after a long career
The team clinched a playoff spot with a win over its rivals
The young driver won his first grand prix in the rain
The hockey team traded its captain for two draft picks
The jockey won the derby on a horse with long odds
The cricket team scored four hundred runs on the first day
The manager praised his players after a hard-fought draw
The runner was banned for two years after a failed drug test
The volleyball team won the gold medal match in straight sets
The point guard scored forty points in the playoff opener
The club sacked its manager after fans protested at the stadium
The golfer sank a long putt to win the title by one stroke
The team's winning streak ended with a loss at home
The olympic committee chose the city to host the winter games
The tennis player withdrew from the tournament with a wrist injury
The defender scored an own goal in the final minute
The wrestler won the title in front of a sold-out crowd
The club paid a record fee for the forward
The race was stopped after a crash on the final lap
The captain lifted the trophy after a penalty shootout
The league will expand to twenty teams next season
The gymnast won three gold medals at the european championships
The coach named a young squad for the summer tournament
The batter hit two home runs to lead his team to victory
The team was relegated after losing on the final day
The rowers beat the world record in the heats
The champion lost her first match in two years
The club's new signing scored on his debut
The match was abandoned after fans threw objects onto the pitch
The runner won the city marathon for the third time
The team's owner promised to spend more on players
The fighter announced his return to the ring after a year away
The skater landed a quadruple jump to win the title
The team came from behind to win the series in seven games
The star forward signed a contract extension with the club
The triathlete collapsed at the finish line but recovered quickly
The women's team won the league without losing a game""".split("\n")
